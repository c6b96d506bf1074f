"""Crash-safe training state inside the run directory (``RUN/state/``).

After every epoch the trainer writes a *snapshot*: the model and optimizer weights
(``epoch-0007.weights.h5``), the callbacks' arrays (``epoch-0007.arrays.npz``, e.g. early
stopping's best weights) and, last, a manifest (``epoch-0007.json``) holding the epoch, the
history so far, the callbacks' counters, how many iterators of the training data were made
(``data_iterators``) and the SHA-256 of each file. Each file is written
atomically, and the manifest goes last, so a snapshot exists only once it is whole. The two
newest snapshots are kept: if the newest is damaged (truncated, corrupt, hash mismatch) the
previous one is used; if none is usable the run cannot resume and says so, without a traceback.

Unlike Keras' ``BackupAndRestore`` this keeps the history and the state of early stopping,
learning-rate reduction and checkpointing, so a resumed run ends with every epoch once.

A resumed run also continues the random sequences where they were: the arrays hold the states
of the model's and the augmentation's Keras seed generators (Dropout, the random augmentation
layers; ``save_weights`` leaves them out), and ``data_iterators`` lets the trainer make and drop
as many iterators of its training data as the run had made, so that the seeded shuffle, which
draws a new order for each iterator, gives the next epoch the order it would have had. A
snapshot without them (older cnnspec) still resumes, only not exactly (the trainer says so).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnspec.errors import UsageError, WriteError
from cnnspec.fileio import atomic_path, is_atomic_leftover, remove_atomic_temp, sha256_file, write_atomic
from cnnspec.jsontext import json_text
from cnnspec.training.runlock import RunFolderLost
from cnnspec.write_faults import ensure_space

STATE_DIR = "state"
KEEP = 2
FORMAT = 1
#: What a ``.keras`` archive (or an HDF5 weights or legacy ``.h5`` file) adds to the raw bytes
#: of the variables (:func:`model_file_bytes`): per file (HDF5's superblock and root groups,
#: metadata.json, the zip's directory), per variable of the model (its dataset's header, name
#: and attributes), per optimizer variable (a dataset in the optimizer's one group), per layer
#: (its entry in config.json, about 1 KiB, and its HDF5 groups). Fitted over 14 models of 2 to
#: 313 layers (Keras 3.15, without and with Adam's variables; docs/faults.md) as an upper
#: bound with 1.3× to 1.6× the overhead measured: the tiny conv net's 20.0 KiB archive is
#: estimated 29.3 KiB (the former flat 64 KiB per file and 4 KiB per variable said 80.3 KiB,
#: and refused it on a 64 KiB disk); a large model's estimate is its raw bytes and 1–10 %.
PER_FILE_BYTES = 12 * 1024
PER_VARIABLE_BYTES = 1280
PER_OPTIMIZER_VARIABLE_BYTES = 768
PER_LAYER_BYTES = 3072
MANIFEST_BYTES = 64 * 1024
#: The data files of a snapshot (its manifest is ``<stem>.json``).
_DATA_FILE = re.compile(r"(?P<stem>epoch-\d{4}(?:-final)?)\.(?:weights\.h5|arrays\.npz)")


def variables_bytes(variables: list[Any]) -> int:
    """Raw bytes of ``variables`` (Keras variables or arrays): elements × item size."""
    total = 0
    for variable in variables:
        if not hasattr(variable, "shape") or not hasattr(variable, "dtype"):
            continue  # (not an array: nothing to count)
        count = int(np.prod(tuple(variable.shape), dtype=np.int64))
        total += count * np.dtype(str(getattr(variable.dtype, "name", variable.dtype))).itemsize
    return total


#: The kinds of Keras object (``_obj_type``) whose attributes a save walks: see :func:`keep_skipsets`.
_WALKED_KINDS = ("Functional", "Sequential", "Layer", "Operation", "Optimizer", "Metric", "Loss")


def keep_skipsets() -> None:
    """Let Keras find the attribute names its saves skip, which it computes once per kind.

    Keras 3.15's ``saving_lib.get_attr_skipset`` stores each kind's set under the global
    ``saving_attr_skipset_KIND`` but looks it up under ``saving_attr_skiplist_KIND``, so it never
    finds it: every object a save walks (each layer, the optimizer) built a throwaway ``Layer``
    or ``Optimizer`` again to list its attributes, half the time of a small model's snapshot.
    The set Keras computed is stored where it looks, so the save walks and writes exactly
    what it did (the same set, the same bytes). Only where the lookup misses as described:
    a Keras that finds its own set, or lacks the function, is left as it is. Keras keeps these
    per thread (and ``clear_session`` drops them), so the check is made before each save."""
    keras = sys.modules.get("keras")
    if keras is None:
        return
    try:
        from keras.src.backend.common import global_state
        from keras.src.saving.saving_lib import get_attr_skipset
    except ImportError:
        return
    for kind in _WALKED_KINDS:
        looked_up = f"saving_attr_skiplist_{kind}"
        if global_state.get_global_attribute(looked_up) is not None:
            continue
        try:
            skipset = get_attr_skipset(kind)
        except (ValueError, TypeError, ImportError):  # (a kind this Keras does not know)
            continue
        if global_state.get_global_attribute(f"saving_attr_skipset_{kind}") is skipset:  # stored, not found
            global_state.set_global_attribute(looked_up, skipset)


def weights_image(model: Any) -> bytes | None:
    """The bytes ``model.save_weights`` would write (optimizer included), built in memory.

    Why not ``save_weights`` straight to disk: HDF5 writes through its own C driver, and when
    the disk fills up mid-file the failed close leaves a half-open file behind that crashes the
    interpreter at exit (segmentation fault, exit 139). Built in memory, the file reaches the
    disk through one plain Python write, whose failure is an ``OSError`` like any other. This
    is the route Keras itself takes for the weights inside a ``.keras`` archive; ``None`` when
    this Keras lacks it (the caller then writes with ``save_weights``)."""
    keras = sys.modules.get("keras")  # a Keras model means Keras is imported; a stand-in isn't one
    if keras is None or not isinstance(model, keras.Model):
        return None
    try:
        from keras.src.saving import saving_lib

        store_class, save_state = saving_lib.H5IOStore, saving_lib._save_state
    except (ImportError, AttributeError):
        return None
    keep_skipsets()
    buffer = io.BytesIO()
    store = store_class(buffer, mode="w")
    try:
        save_state(model, weights_store=store, assets_store=None, inner_path="", visited_saveables=set())
    finally:
        store.close()  # flushes the HDF5 file into the buffer (memory: it can't fail on a disk)
    return buffer.getvalue()


def model_file_bytes(model: Any) -> int:
    """About the size of the model's weights file or ``.keras`` archive, optimizer included:
    what a free-space check asks for before writing one (an over- rather than underestimate,
    by a modest margin: see :data:`PER_FILE_BYTES`)."""
    variables = list(getattr(model, "weights", []))
    optimizer = getattr(model, "optimizer", None)
    slots = []
    if optimizer is not None and getattr(optimizer, "built", False):
        slots = list(getattr(optimizer, "variables", []))
    return (
        variables_bytes(variables + slots)
        + PER_FILE_BYTES
        + PER_VARIABLE_BYTES * len(variables)
        + PER_OPTIMIZER_VARIABLE_BYTES * len(slots)
        + PER_LAYER_BYTES * _layer_count(model)
    )


#: What a SavedModel (``model.export``, Keras 3.15 / TensorFlow 2.21) takes beyond its weights:
#: its variables file holds each weight twice (measured: 458,746 bytes for digits_cnn's 227,496
#: of weights, 301.6 MB for vgg16's 150.8 MB at 32×32), and saved_model.pb about 100 KiB and
#: 10 KiB a layer (109 KiB for 14 layers, 201 KiB for 23). An upper bound, as the others: 256
#: KiB and 16 KiB a layer (specs/mobilenet_v2.yaml at 32×32: 30.2 MB written, 32.7 MB
#: estimated; the ``.keras`` estimate said 15.0 MB: a disk with room for that passed the check
#: up front, then filled up in the middle of the export).
SAVED_MODEL_BYTES = 256 * 1024
SAVED_MODEL_LAYER_BYTES = 16 * 1024


def saved_model_bytes(model: Any) -> int:
    """About the size of ``model``'s SavedModel folder (no optimizer: an export has none), an
    over- rather than underestimate (:data:`SAVED_MODEL_BYTES`)."""
    weights = variables_bytes(list(getattr(model, "weights", [])))
    return 2 * weights + SAVED_MODEL_BYTES + SAVED_MODEL_LAYER_BYTES * _layer_count(model)


def _layer_count(model: Any) -> int:
    """How many layers ``model`` holds, nested ones (a backbone's) included: each has its entry
    in the archive's config.json and its group in the weights file."""
    flatten = getattr(model, "_flatten_layers", None)  # (Keras' own walk; a stand-in has none)
    if callable(flatten):
        try:
            return sum(1 for _ in flatten(include_self=False, recursive=True))
        except TypeError:  # (another signature: counted by hand below)
            pass
    layers = getattr(model, "layers", None)
    if not isinstance(layers, list | tuple):
        return 0
    return sum(1 + _layer_count(layer) for layer in layers)


def decode_float(value: Any) -> Any:
    """A manifest's figure as :func:`~cnnspec.jsontext.json_text` wrote it (``"nan"``: NaN)."""
    if value in ("inf", "-inf", "nan"):
        return float(value)
    return value


def _optional_int(value: Any) -> int | None:
    """A manifest's optional count: ``None`` when absent; a wrong type raises ``TypeError``
    (the manifest is then skipped as damaged, like any other unreadable field)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


@dataclass
class Snapshot:
    """One saved training state: epochs completed, history and callback state."""

    epoch: int
    manifest: Path
    history: list[dict[str, float]] = field(default_factory=list)
    callbacks: dict[str, dict[str, Any]] = field(default_factory=dict)
    complete: bool = False
    stopped_early: bool = False
    files: dict[str, str] = field(default_factory=dict)
    #: Iterators of the training dataset made up to this snapshot (``None``: not recorded, an
    #: older snapshot or one whose run could not count them: the resume is then not exact).
    data_iterators: int | None = None

    @property
    def weights(self) -> Path:
        return self.manifest.with_name(self.manifest.stem + ".weights.h5")

    @property
    def arrays(self) -> Path:
        return self.manifest.with_name(self.manifest.stem + ".arrays.npz")


class TrainingState:
    """Reads and writes the snapshots of one run directory."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = Path(run_dir) / STATE_DIR

    # -- writing --------------------------------------------------------------------------------
    def save(
        self,
        model: Any,
        epoch: int,
        history: list[dict[str, float]],
        callbacks: dict[str, dict[str, Any]],
        arrays: dict[str, list[np.ndarray]] | None = None,
        *,
        complete: bool = False,
        stopped_early: bool = False,
        data_iterators: int | None = None,
    ) -> Snapshot:
        """Write the snapshot after ``epoch`` completed epochs; keep the newest ``KEEP``.

        Its files are built in memory first, so their sizes are known: when the disk can't take
        the whole snapshot, nothing of it is written (``WriteError``) and the older snapshots
        stay as they were, ready for ``--resume``. ``data_iterators``: see :class:`Snapshot`."""
        stem = f"epoch-{epoch:04d}" + ("-final" if complete else "")
        snapshot = Snapshot(epoch, self.dir / f"{stem}.json", history, callbacks, complete, stopped_early)
        snapshot.data_iterators = data_iterators
        flat = {f"{name}__{i}": a for name, items in (arrays or {}).items() for i, a in enumerate(items)}
        image = weights_image(model)
        packed = b""
        if flat:
            buffer = io.BytesIO()
            np.savez(buffer, **flat)
            packed = buffer.getvalue()
        weights_size = len(image) if image is not None else model_file_bytes(model)
        # (the manifest: the history and the callbacks' counters, a few KiB; 64 KiB is ample)
        ensure_space(self.dir, weights_size + len(packed) + MANIFEST_BYTES, snapshot.weights)
        try:
            self._write(snapshot, model, image, weights_size, packed)
        except WriteError as fault:  # a snapshot is whole or absent: drop its files, give their space back
            if not isinstance(fault, RunFolderLost):  # (else those at its path may be another run's)
                for path in (snapshot.weights, snapshot.arrays):
                    with contextlib.suppress(OSError):
                        path.unlink()
            raise
        self._prune(keep=snapshot)
        return snapshot

    def _write(
        self,
        snapshot: Snapshot,
        model: Any,
        image: bytes | None,
        weights_size: int,
        packed: bytes,
    ) -> None:
        """The snapshot's files, the manifest last."""
        # each hash is of the bytes written, taken before the commit: read back after it, a
        # file of a run folder moved meanwhile is gone (FileNotFoundError, not the move's error)
        if image is not None:
            write_atomic(snapshot.weights, image)
            files = {snapshot.weights.name: hashlib.sha256(image).hexdigest()}
        else:
            with atomic_path(snapshot.weights, suffix=".weights.h5", needed=weights_size) as temp:
                model.save_weights(str(temp))
                files = {snapshot.weights.name: sha256_file(temp)}
        if packed:
            write_atomic(snapshot.arrays, packed)
            files[snapshot.arrays.name] = hashlib.sha256(packed).hexdigest()
        snapshot.files = files
        history, callbacks = snapshot.history, snapshot.callbacks
        manifest = {
            "format": FORMAT,
            "epoch": snapshot.epoch,
            "complete": snapshot.complete,
            "stopped_early": snapshot.stopped_early,
            "history": history,
            "callbacks": callbacks,
            "files": files,
        }
        if snapshot.data_iterators is not None:  # (absent, as in older manifests, when not counted)
            manifest["data_iterators"] = snapshot.data_iterators
        write_atomic(snapshot.manifest, json_text(manifest, indent=1))

    def _prune(self, keep: Snapshot) -> None:
        manifests = sorted(self.dir.glob("epoch-*.json"), key=self._order, reverse=True)
        for old in manifests[KEEP:]:
            for path in (
                old,
                old.with_name(old.stem + ".weights.h5"),
                old.with_name(old.stem + ".arrays.npz"),
            ):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        # files of snapshots whose manifest never got written (killed mid-save)
        wanted = {p.stem for p in self.dir.glob("epoch-*.json")}
        for path in self.dir.glob("epoch-*"):
            if path.name.split(".")[0] not in wanted:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        for temp in self.dir.glob(".epoch-*"):  # temps left by a kill during a write
            if not temp.is_dir() or is_atomic_leftover(temp):  # (a folder: atomic_path's only)
                remove_atomic_temp(temp)

    def _unfinished(self, path: Path) -> bool:
        """A data file of a snapshot whose manifest was never written, or a temp file."""
        if is_atomic_leftover(path):
            return True
        found = _DATA_FILE.fullmatch(path.name)
        return found is not None and not (self.dir / f"{found.group('stem')}.json").exists()

    @staticmethod
    def _order(path: Path) -> tuple[int, int]:
        parts = path.stem.split("-")
        try:
            return int(parts[1]), 1 if path.stem.endswith("-final") else 0
        except (IndexError, ValueError):
            return -1, 0

    # -- reading --------------------------------------------------------------------------------
    def snapshots(self, notes: list[str] | None = None) -> list[Snapshot]:
        """Readable manifests, newest first (unreadable ones are skipped with a note)."""
        if not self.dir.is_dir():
            return []
        found = []
        for path in sorted(self.dir.glob("epoch-*.json"), key=self._order, reverse=True):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                snapshot = Snapshot(
                    epoch=int(data["epoch"]),
                    manifest=path,
                    history=[{k: decode_float(v) for k, v in row.items()} for row in data["history"]],
                    callbacks={
                        name: {k: decode_float(v) for k, v in values.items()}
                        for name, values in data.get("callbacks", {}).items()
                    },
                    complete=bool(data.get("complete", False)),
                    stopped_early=bool(data.get("stopped_early", False)),
                    files=dict(data["files"]),
                    data_iterators=_optional_int(data.get("data_iterators")),
                )
            except (OSError, ValueError, KeyError, TypeError) as exc:
                if notes is not None:
                    notes.append(f"skipped damaged state file {path.name} ({type(exc).__name__})")
                continue
            # a manifest whose epoch is not its file's (or short of its history's rows) was
            # edited or damaged: resumed, it said "resuming after epoch 999" and finished there
            named = self._order(path)[0]
            if snapshot.epoch != named or len(snapshot.history) > snapshot.epoch:
                if notes is not None:
                    notes.append(
                        f"skipped damaged state file {path.name} (it says epoch {snapshot.epoch}, with "
                        f"{len(snapshot.history)} epochs of history)"
                    )
                continue
            found.append(snapshot)
        return found

    def verify(self, snapshot: Snapshot) -> str | None:
        """``None`` when every file of the snapshot is present with its recorded hash."""
        for name, digest in snapshot.files.items():
            path = self.dir / name
            if not path.is_file():
                return f"{name} is missing"
            if sha256_file(path) != digest:
                return f"{name} is damaged (checksum mismatch)"
        return None

    def restore(
        self,
        model: Any,
        notes: list[str],
        prepare: Callable[[Snapshot], None] | None = None,
    ) -> tuple[Snapshot, dict[str, list[np.ndarray]]] | None:
        """Load the newest usable snapshot into ``model`` (optimizer included).

        Returns the snapshot and its arrays, ``None`` when there is no state at all, and
        raises :class:`UsageError` when snapshots exist but none can be loaded. ``prepare``
        sets the model up for a snapshot before it is loaded (a phased run: the frozen layers
        and the optimizer of the phase that wrote it, so the optimizer's variables match).
        """
        snapshots = self.snapshots(notes)
        if not snapshots:
            found = list(self.dir.iterdir()) if self.dir.is_dir() else []
            unfinished = [path for path in found if self._unfinished(path)]
            if len(unfinished) < len(found):
                raise UsageError(
                    f"no usable training state in {self.dir}: every snapshot is damaged or incomplete",
                    "start a new run (without --resume), or delete the folder's state/ to restart it",
                )
            if unfinished:  # a first snapshot that was never finished: the run starts over
                notes.append(f"ignored {len(unfinished)} file(s) of a snapshot that was never finished")
            return None
        for snapshot in snapshots:
            problem = self.verify(snapshot)
            if problem is None:
                try:
                    if prepare is not None:
                        prepare(snapshot)
                    if model.optimizer is not None and not model.optimizer.built:
                        model.optimizer.build(model.trainable_variables)
                    model.load_weights(str(snapshot.weights))
                    arrays = self._arrays(snapshot)
                except Exception as exc:  # h5py/Keras raise many types for damaged files
                    problem = f"cannot be loaded ({type(exc).__name__}: {str(exc)[:120]})"
                else:
                    return snapshot, arrays
            notes.append(f"snapshot after epoch {snapshot.epoch} {problem}; trying an older one")
        raise UsageError(
            f"no usable training state in {self.dir}: {len(snapshots)} snapshot(s), all damaged",
            "start a new run (without --resume)",
        )

    def _arrays(self, snapshot: Snapshot) -> dict[str, list[np.ndarray]]:
        if snapshot.arrays.name not in snapshot.files:
            return {}
        out: dict[str, list[np.ndarray]] = {}
        with np.load(snapshot.arrays, allow_pickle=False) as archive:
            keys = sorted(archive.files, key=lambda k: (k.rsplit("__", 1)[0], int(k.rsplit("__", 1)[1])))
            for key in keys:
                out.setdefault(key.rsplit("__", 1)[0], []).append(np.asarray(archive[key]))
        return out

    def clear(self) -> None:
        """Remove the snapshots once the run has finished and its outputs are written."""
        shutil.rmtree(self.dir, ignore_errors=True)
