"""The streamed input pipeline: image files → shuffle → parallel read + decode + resize → batch
→ scale → augment → mix → prefetch, with memory bounded by a few batches whatever the folder's
size (the steps after the batch are the in-memory pipeline's own: :func:`pipeline.finish`).

Only the file *indices* are shuffled (every epoch, seeded, like the in-memory pipeline, in a
buffer of ``data.shuffle_buffer`` indices, default all of them), so the shuffle costs eight
bytes per image. Each image is decoded by
:func:`cnnspec.training.imagefiles.load_image` — the Pillow decode every other part of cnnspec
uses — so a streamed folder gives exactly the pixels the in-memory reader gave and
``predict`` gives. Decoding runs in ``parallel_calls()`` tf.data threads (Pillow releases the
GIL while it inflates), with the fixed knobs of :mod:`cnnspec.training.pipeline`.

A file that fails to decode mid-epoch is never a TensorFlow error: the reader records its path
and reason in :data:`BAD_READS`, drops the image from its batch, and :class:`BadReadCheck`
(a Keras callback) stops the run with the list (``data.on_bad_file: error``) or lets it go on
(``skip``; the trainer adds the files to ``bad_files.txt``).

``data.cache``: ``memory`` or ``disk`` keep the decoded images after the first epoch
(tf.data's ``cache``); the cached images are then shuffled in a bounded buffer
(``data.shuffle_buffer``, default :data:`CACHED_SHUFFLE_BUFFER`) instead of by index, and
the training files are put in a seeded random order once, before the cache, so that the buffer
mixes every class even where the files are listed class by class.
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from cnnspec.errors import UsageError
from cnnspec.spec.sections import CACHED_SHUFFLE_BUFFER
from cnnspec.training.badfiles import decode_reason
from cnnspec.training.filelist import ImageFiles
from cnnspec.training.pipeline import PipelineSettings, batch_preparer, finish, parallel_calls

#: a folder into which every process appends the paths it reads (``reads-<pid>.txt``): the
#: evidence of the multi-worker test that each image is read once per epoch across workers
TRACE_ENV = "CNNSPEC_STREAM_TRACE"


# A stream's length is unknown until it ends (bad files are dropped on the way), so Keras learns
# an epoch's batches from the first epoch and warns that the input "ran out of data" as it does.
warnings.filterwarnings("ignore", message="Your input ran out of data", category=UserWarning)


class BadReads:
    """Files that failed to decode while streaming (thread-safe; the reader runs in tf.data's
    threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._found: dict[str, str] = {}
        self._reported = 0

    def record(self, path: Path, reason: str) -> None:
        with self._lock:
            self._found.setdefault(str(path), reason)

    def all(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._found.items())

    def new(self) -> list[tuple[str, str]]:
        """The files recorded since the last call."""
        with self._lock:
            items = list(self._found.items())
            fresh, self._reported = items[self._reported :], len(items)
            return fresh

    def clear(self) -> None:
        with self._lock:
            self._found.clear()
            self._reported = 0


BAD_READS = BadReads()


def bad_read_error(bad: list[tuple[str, str]], hint: str | None = None) -> UsageError:
    """The error for files that failed to decode while streaming, each named by path (``hint``:
    the files' :attr:`~cnnspec.training.filelist.ImageFiles.bad_hint`, else the spec's)."""
    from cnnspec.training.badfiles import SPEC_HINT, decode_error

    return decode_error(bad, hint or SPEC_HINT)


def raise_bad_reads(on_bad_file: str) -> None:
    """Raise :func:`bad_read_error` if a file failed to decode and the spec says ``error``."""
    if on_bad_file == "error":
        fresh = BAD_READS.new()
        if fresh:
            raise bad_read_error(fresh)


def settle(files: ImageFiles, y: np.ndarray) -> tuple[ImageFiles, np.ndarray]:
    """After a pass over ``files`` (evaluation, prediction): an error naming the files that
    failed to decode (``on_bad_file: error``), else the files and labels without them, so the
    labels line up with the predictions the pipeline made (it dropped those images). Only
    ``files``' own failures count: :data:`BAD_READS` lives as long as the process, and an
    earlier command's (another run's bad files, in a test session or a program using cnnspec)
    stopped an evaluation of good files."""
    own = {str(path) for path in files.paths}
    if files.on_bad_file == "error":
        fresh = [(path, reason) for path, reason in BAD_READS.new() if path in own]
        if fresh:
            raise bad_read_error(fresh, files.bad_hint)
    failed = {path for path, _ in BAD_READS.all() if path in own}
    keep = [i for i, path in enumerate(files.paths) if str(path) not in failed]
    if len(keep) == len(files):
        return files, y
    return files.subset(keep), np.asarray(y)[keep]


def readable(files: ImageFiles, y: Any) -> tuple[ImageFiles, Any, int]:
    """``files`` and labels ``y`` without the files that fail to decode, and how many those are,
    where the source leaves such files out (``on_bad_file: skip``); unchanged otherwise.

    For the commands that index or predict a run's split image by image (report, calibrate,
    visualize, ``evaluate --tta``): they must see the images evaluate's stream reads, which drops
    the same files (``files.load`` decodes both ways), or a sample index and a count would take in
    a file no figure covers. Each file is decoded once in a thread pool (Pillow releases the GIL)
    and its pixels dropped at once, so memory stays flat; failures go to :data:`BAD_READS` with the
    reason the stream gives them, so a later :func:`settle` finds nothing more to drop."""
    from concurrent.futures import ThreadPoolExecutor

    if files.on_bad_file != "skip" or len(files) == 0:
        return files, y, 0

    def decodes(index: int) -> bool:
        try:
            files.load(index)
            return True
        except UsageError as exc:  # Pillow's reason is the hint; the message names the file
            BAD_READS.record(files.paths[index], decode_reason(exc))
        except Exception as exc:
            BAD_READS.record(files.paths[index], f"{type(exc).__name__}: {exc}")
        return False

    with ThreadPoolExecutor(max_workers=max(1, min(16, os.cpu_count() or 1))) as pool:
        ok = list(pool.map(decodes, range(len(files)), chunksize=16))
    keep = [i for i, good in enumerate(ok) if good]
    if len(keep) == len(files):
        return files, y, 0
    return files.subset(keep), np.asarray(y)[keep], len(files) - len(keep)


def _tracer() -> Any:
    folder = os.environ.get(TRACE_ENV)
    if not folder:
        return None
    lock = threading.Lock()
    path = Path(folder) / f"reads-{os.getpid()}.txt"

    def trace(tag: str, file: Path) -> None:
        with lock, path.open("a", encoding="utf-8") as handle:
            handle.write(f"{tag}\t{file}\n")

    return trace


def _reader(files: ImageFiles, tag: str) -> Any:
    """``index → (pixels, ok)``: the image at ``index``, or zeros and ``False`` (recorded in
    :data:`BAD_READS`) when it cannot be decoded."""
    blank = np.zeros((*files.size, files.channels), dtype="uint8")
    trace = _tracer()

    def read(index: Any) -> tuple[np.ndarray, np.bool_]:
        i = int(index)
        if trace is not None:
            trace(tag, files.paths[i])
        try:
            return files.load(i), np.bool_(True)
        except UsageError as exc:  # Pillow's reason is the hint; the message names the file
            BAD_READS.record(files.paths[i], decode_reason(exc))
        except Exception as exc:
            BAD_READS.record(files.paths[i], f"{type(exc).__name__}: {exc}")
        return blank, np.bool_(False)

    return read


def shard_batches(total: int, count: int, index: int, batch_size: int) -> list[int]:
    """The sizes of the batches in which worker ``index`` of ``count`` reads its part
    (``files[index::count]``) of ``total`` files.

    Every worker must run the same number of steps: when one worker's part runs out first,
    ``tf.distribute`` hands its replica an empty batch, which TensorFlow's CPU convolution turns
    into a wrongly shaped tensor (the step fails). So each worker cuts its part into as many
    batches as the largest part needs at ``batch_size``: full batches first, then the rest
    spread evenly over the remaining ones (never more than ``batch_size``, never empty). Every
    file is still read exactly once. That is impossible only when the smallest part has fewer
    files than there are steps (a batch of one image per replica, or fewer files than workers):
    a :class:`UsageError`.
    """
    size = len(range(index, total, count))
    largest = -(-total // count)  # (ceiling divisions)
    steps = -(-largest // batch_size)
    if total // count < steps:  # the smallest part cannot fill a batch per step
        raise UsageError(
            f"expected every one of the {count} workers to read at least one image per step; "
            f"{total} files in batches of {batch_size} per replica leave a worker short",
            "set training.batch_size to at least 2 images per replica (the global batch is split "
            "over every replica), or use more images",
        )
    full = max(j for j in range(steps + 1) if size - j * batch_size >= steps - j)
    rest, left = size - full * batch_size, steps - full
    return [batch_size] * full + [rest // left + (1 if i < rest % left else 0) for i in range(left)]


def _batched(dataset: Any, sizes: list[int]) -> Any:
    """``dataset`` cut into consecutive batches of ``sizes`` (cycling, for a repeated stream)."""
    import tensorflow as tf

    ends = tf.constant(np.cumsum(sizes), dtype=tf.int64)
    widths = tf.constant(sizes, dtype=tf.int64)
    total = int(np.sum(sizes))

    def key(position: Any, _: Any) -> Any:
        return tf.searchsorted(ends, [position % total], side="right", out_type=tf.int64)[0]

    grouped = dataset.enumerate().group_by_window(
        key_func=key,
        reduce_func=lambda _, window: window.batch(total),
        window_size_func=lambda which: widths[which],
    )
    return grouped.map(lambda _, element: element)


def _decoded(pixels: Any, label: Any, ok: Any) -> Any:
    return ok


def _without_flag(pixels: Any, label: Any, ok: Any) -> tuple[Any, Any]:
    return pixels, label


def make_stream(
    files: ImageFiles,
    y: np.ndarray,
    settings: PipelineSettings,
    *,
    training: bool = False,
    seed: int | None = None,
    augmentation: Any = None,
    shuffle_buffer: int | None = None,
    repeat: bool = False,
    cache_file: Path | None = None,
    shard: tuple[int, int] | None = None,
    mixing: Any = None,
) -> Any:
    """A batched ``tf.data.Dataset`` of ``(images, labels)`` read from ``files``.

    ``shard=(count, index)``: read only every ``count``-th file from ``index`` (one worker's
    part; the parts are disjoint and cover every file). ``files.cache``: ``memory`` keeps the
    decoded images in memory, ``disk`` in ``cache_file`` (without one, nothing is cached).
    ``augmentation`` and ``mixing`` apply to training batches only (as in :func:`make_dataset`).
    """
    import tensorflow as tf

    indices = np.arange(len(files), dtype="int64")
    if shard is not None:
        count, index = shard
        indices = indices[index::count]
    labels = np.asarray(y)
    read = _reader(files, "train" if training else "eval")
    shape = (*files.size, files.channels)

    def load(index: Any) -> tuple[Any, Any, Any]:
        pixels, ok = tf.numpy_function(read, [index], (tf.uint8, tf.bool), stateful=False)
        pixels.set_shape(shape)
        ok.set_shape(())
        return pixels, tf.gather(labels, index), ok

    # disk: only where the trainer names a file in the run folder (never a memory cache instead)
    cache = files.cache if files.cache == "memory" or cache_file is not None else "none"
    if training and cache != "none":
        # The cache keeps the first pass's order for good, and the shuffle buffer after it mixes
        # only a window: files listed class by class (a validation/ folder or a test set of its
        # own leaves them unsplit) would reach training a class at a time. Permuted once by the
        # seed, the buffer mixes a random order (the generated script permutes alike). After
        # the shard, so each worker's part stays its own whatever the seed.
        indices = np.random.default_rng(seed).permutation(indices)
    dataset = tf.data.Dataset.from_tensor_slices(indices)
    if training and cache == "none":
        # data.shuffle_buffer bounds the index shuffle as it bounds the in-memory one (1: the
        # listed order); by default every index is in the buffer, a full shuffle
        buffer = min(len(indices), shuffle_buffer) if shuffle_buffer else len(indices)
        dataset = dataset.shuffle(max(buffer, 1), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.map(load, num_parallel_calls=parallel_calls(), deterministic=True)
    dataset = dataset.filter(_decoded).map(_without_flag)
    if cache != "none":
        dataset = dataset.cache(str(cache_file) if cache == "disk" else "")
        if training:
            buffer = min(len(indices), shuffle_buffer or CACHED_SHUFFLE_BUFFER)
            dataset = dataset.shuffle(max(buffer, 1), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    size = settings.batch_size
    sizes = shard_batches(len(files), *shard, size) if shard is not None else []
    plain = [size] * (len(indices) // size) + ([len(indices) % size] if len(indices) % size else [])
    if shard is None or sizes == plain:  # (what dataset.batch makes)
        dataset = dataset.batch(size)
    else:  # as many batches as every other worker (see shard_batches)
        dataset = _batched(dataset, sizes)
    dataset = dataset.map(batch_preparer(settings))
    if not training:
        augmentation = mixing = None  # validation and test data are never augmented nor mixed
    return finish(dataset, augmentation, settings.prepare_targets, mixing)


def make_keras_callback(on_bad_file: str) -> Any:
    """A Keras callback that raises :func:`bad_read_error` after the batch in which a file
    failed to decode (``data.on_bad_file: error``)."""
    from cnnspec.training.runtime import import_keras

    keras = import_keras()

    class BadReadCheck(keras.callbacks.Callback):
        def _check(self, *_: Any, **__: Any) -> None:
            raise_bad_reads(on_bad_file)

        on_train_batch_end = on_test_batch_end = on_predict_batch_end = _check
        on_epoch_end = on_test_end = on_predict_end = _check

    return BadReadCheck()
