"""Whether a training fits in the memory of this machine, estimated before anything big is
allocated: a spec whose data or batches cannot fit (an ``input.shape`` of 60000×60000 pixels)
was killed by the kernel's OOM killer with no word, leaving an empty run folder.

The estimate is a floor, never a guess high: the arrays the data source materialises (the
``shapes`` and ``digits`` images generated, the images of an ``{images: …}`` folder read at
their size, an ``.npz``'s arrays by the sizes their headers declare, nothing loaded; the images
``data.cache: memory`` keeps of a folder or CSV, by its files or rows), and, on a
machine without a GPU, one training batch's activations from the shapes the IR inferred for
every layer (the largest tensor, and the input of every layer whose weights train, which its
gradient reads in the backward pass). What TensorFlow adds on top (gradients, the optimizer's
slots, its own copies of the arrays) is left out, so a spec refused here cannot fit whatever
TensorFlow does. No TensorFlow is imported.
"""

from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cnnspec.errors import SpecError, format_path

if TYPE_CHECKING:
    from cnnspec.analysis.compiled import CompiledSpec
    from cnnspec.analysis.settings_types import TrainConfig

#: Bytes per value of the activations (float32: training's dtype; float16 under mixed precision).
ACTIVATION_BYTES = 4
#: The images of the embedded ``digits`` (scikit-learn's 8×8 digits).
DIGITS_IMAGES = 1797


@dataclass(frozen=True)
class Need:
    """Memory a part of the training needs at least: ``size`` bytes, ``what`` it is for, and
    the spec path that sizes it (where a refusal is located)."""

    size: int
    what: str
    path: tuple[str, ...]
    #: the data's images, where known (a batch holds at most that many)
    images: int | None = None


def available_memory() -> tuple[int, str] | None:
    """The memory this process may still take, and where the figure comes from: the lower of
    /proc/meminfo's MemAvailable and the cgroup's limit less its usage (a container's limit is
    lower than the host's memory); ``os.sysconf``'s available pages elsewhere. ``None``: unknown."""
    found: list[tuple[int, str]] = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append((int(line.split()[1]) * 1024, "MemAvailable in /proc/meminfo"))
                break
    except (OSError, ValueError, IndexError):
        pass
    cgroup = _cgroup_room()
    if cgroup is not None:
        found.append((cgroup, "the cgroup's memory limit less its usage"))
    if not found:
        try:
            pages, size = os.sysconf("SC_AVPHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
            if pages > 0 and size > 0:
                found.append((pages * size, "the available physical pages"))
        except (AttributeError, ValueError, OSError):
            pass
    return min(found) if found else None


#: The cgroup's files (v2, then v1): its limit, its usage, its statistics and the key there of
#: the page cache its usage counts.
_CGROUP_FILES = (
    ("memory.max", "memory.current", "memory.stat", "file"),
    ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes", "memory/memory.stat", "total_cache"),
)


def _cgroup_room(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """The cgroup's memory limit less what it uses, its page cache not counted (v2, else v1);
    ``None``: no limit. The usage counts the files read and written lately, which the kernel
    gives back under the limit: counted, a container that had read its data (or pip's
    downloads) left "no room" for a training that fits."""
    for limit_file, usage_file, stat_file, cache_key in _CGROUP_FILES:
        try:
            text = (root / limit_file).read_text().strip()
        except OSError:
            continue
        if text == "max" or not text.isdecimal() or int(text) >= 1 << 60:  # (v1's "no limit")
            return None
        try:
            usage = int((root / usage_file).read_text().strip())
        except (OSError, ValueError):
            usage = 0
        return max(0, int(text) - max(0, usage - _stat(root / stat_file, cache_key)))
    return None


def _stat(path: Path, key: str) -> int:
    """The value of ``key`` in a cgroup's ``memory.stat`` (0: none, or unreadable)."""
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key and value.strip().isdecimal():
                return int(value)
    except OSError:
        pass
    return 0


def _count(shape: object) -> int | None:
    """The values of a shape (``None``: a dimension is unknown)."""
    if not isinstance(shape, (tuple, list)) or any(not isinstance(d, int) for d in shape):
        return None
    return math.prod(shape)


def activation_need(compiled: CompiledSpec, config: TrainConfig, images: int | None = None) -> Need | None:
    """One training batch's activations, float32, at least: the largest tensor of the forward
    pass (the input, or a layer's output), and the input of every layer whose weights train
    (its weights' gradient reads it, so it is kept from the forward pass to the backward one; a
    frozen layer's is not). ``images``: the data's, where known (a batch of more is as large as
    the data)."""
    ir = compiled.ir
    sizes = {ir.input_name: _count(tuple(ir.input_shape)) or 0}
    for node in ir.nodes:
        sizes[node.name] = _count(tuple(node.shape) if node.shape is not None else None) or 0
    kept = {name for node in ir.nodes if node.trainable and node.counts.trainable for name in node.inputs}
    kept.add(max(sizes, key=lambda name: sizes[name]))
    values = sum(sizes.get(name, 0) for name in kept)
    if not values:
        return None
    batch = max(1, min(int(config.batch_size), images or int(config.batch_size)))
    width, dtype = (2, "float16") if config.mixed_precision else (ACTIVATION_BYTES, "float32")
    return Need(
        values * batch * width,
        f"the activations of one training batch of {batch} ({dtype}: the largest tensor, and the "
        "inputs of the layers whose weights train)",
        ("input", "shape"),
    )


def data_need(compiled: CompiledSpec, config: TrainConfig) -> Need | None:
    """The arrays the data source materialises before training (``None``: nothing known, or a
    source streamed from files batch by batch)."""
    data = config.data
    shape = tuple(int(d) for d in compiled.ir.input_shape if isinstance(d, int))
    source = ("data", "source")
    if data.kind == "shapes":
        options = data.options
        size = options.get("image_size") or shape[:2]
        if len(size) != 2:
            return None
        count = int(options.get("images", 2000))
        channels = int(options.get("channels", shape[-1] if shape else 3))
        # uint8 images, and per pixel its shape's slot (int8), index (int32) and mask (uint8)
        area = count * int(size[0]) * int(size[1])
        what = f"the {count} generated shapes images and their masks"
        return Need(area * (channels + 6), what, source, count)
    if data.kind == "digits":  # (8×8 whatever the input: another shape is refused once loaded)
        return Need(
            DIGITS_IMAGES * 64 * 8, "the digits images (float64, then float32)", source, DIGITS_IMAGES
        )
    if data.kind == "npz" and data.path is not None:
        declared = npz_declared_size(data.path)
        if declared is None:
            return None
        size, images = declared
        return Need(size, f"the arrays of {data.path.name} (the sizes their headers declare)", source, images)
    if data.kind in ("image_masks", "image_labels", "image_values") and data.path is not None:
        if data.image_size is None or not data.path.is_dir():
            return None
        files = sum(1 for _ in _image_files(data.path))
        per = int(data.image_size[0]) * int(data.image_size[1])
        channels = shape[-1] if shape else 3
        masks = per * 8 if data.kind == "image_masks" else 0  # (int64 class indices)
        return Need(
            files * (per * channels + masks), f"the {files} images of {data.path.name}", source, files
        )
    if data.kind in ("directory", "csv") and data.cache == "memory" and data.image_size is not None:
        files = sum(
            _listed_files(data.kind, root) for root in (data.path, data.test_path) if root is not None
        )
        per = int(data.image_size[0]) * int(data.image_size[1]) * (shape[-1] if shape else 3)
        what = f"the {files} decoded images data.cache: memory keeps (uint8)"
        return Need(files * per, what, ("data", "cache"), files)
    return None


def _listed_files(kind: str, root: Path) -> int:
    """The image files a folder holds, or the rows of a CSV (its header left out); 0 where
    unreadable (the loader says why)."""
    try:
        if kind == "directory":
            return sum(1 for _ in _image_files(root)) if root.is_dir() else 0
        with root.open("rb") as table:
            return max(0, sum(1 for line in table if line.strip()) - 1)
    except OSError:
        return 0


def _image_files(folder: Path):  # type: ignore[no-untyped-def]
    """The image files under ``folder`` (by extension; no header is read)."""
    from cnnspec.training.imagefiles import IMAGE_EXTENSIONS

    suffixes = set(IMAGE_EXTENSIONS)
    for root, _, names in os.walk(folder):
        for name in names:
            if not name.startswith(".") and Path(name).suffix.lower() in suffixes:
                yield Path(root, name)


def npz_declared_size(path: Path) -> tuple[int, int | None] | None:
    """The bytes an ``.npz``'s arrays take once loaded, from each array's ``.npy`` header (nothing
    loaded), and the rows of its ``x_train``. ``None`` for a file the loader refuses in its own
    words: not a readable npz, or a header that promises another size than its member holds (a
    forged or damaged file, not one too large)."""
    import numpy as np

    total, images = 0, None
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with archive.open(info) as stream:
                    version = np.lib.format.read_magic(stream)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
                    else:
                        shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
                    header = stream.tell()
                size = math.prod(int(d) for d in shape) * dtype.itemsize
                if dtype.hasobject or size != info.file_size - header:
                    return None
                total += size
                if info.filename == "x_train.npy" and shape:
                    images = int(shape[0])
    except Exception:  # (zlib's, zipfile's and NumPy's errors alike: the loader names them)
        return None
    return total, images


def gpu_present() -> bool:
    """Whether training may run on an NVIDIA GPU (its device files, unless CUDA_VISIBLE_DEVICES
    hides every device): the batches' activations are then in the GPU's memory, not the host's."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", "unset").strip() in ("", "-1"):
        return False
    return any(Path("/dev").glob("nvidia[0-9]*"))


def gib(size: float) -> str:
    """``12.3 GiB`` (MiB below one GiB, KiB below one MiB)."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20)):
        if size >= scale:
            return f"{size / scale:,.1f} {unit}"
    return f"{size / 1024:,.1f} KiB"


def check_memory(
    compiled: CompiledSpec, config: TrainConfig, available: tuple[int, str] | None = None
) -> None:
    """Raise a located :class:`SpecError` (``out of memory: …``, exit 1) when the data and one
    batch's activations need more memory than is available, before anything is allocated.
    ``available``: the memory and its source (default: :func:`available_memory`)."""
    room = available if available is not None else available_memory()
    if room is None:
        return
    data = data_need(compiled, config)
    # (a GPU holds the activations in its own memory; TensorFlow says when they do not fit there)
    activations = None if gpu_present() else activation_need(compiled, config, data and data.images)
    needs = [need for need in (data, activations) if need]
    total = sum(need.size for need in needs)
    if total <= room[0]:
        return
    largest = max(needs, key=lambda need: need.size)
    parts = "; ".join(f"{gib(need.size)} for {need.what}" for need in needs)
    images = data.images if data is not None else None
    batch = min(int(config.batch_size), images or int(config.batch_size))  # (the data's, when fewer)
    smaller_batch = (
        f", or a smaller training.batch_size (--batch-size; a batch holds {batch} images now)"
        if batch > 1
        else ""
    )
    hints = {
        ("input", "shape"): f"a smaller input.shape (the images resized beforehand){smaller_batch}",
        ("data", "cache"): "data.cache: disk (a cache file in the run folder) or none (each image read "
        "again every epoch), or a smaller input.shape (the images are read at its size)",
        ("data", "source"): "fewer or smaller images in the source (shapes: its images: count and the "
        "input.shape; an npz is loaded whole, before data.limit leaves images out), or images streamed "
        "from a folder (data.source: {directory: …}), read batch by batch",
    }
    path = largest.path
    if path == ("data", "cache") and ("data", "cache") not in compiled.doc.locs:
        path = ("data", "source")  # (set by a default or a --set: said at the source, its hint kept)
    raise SpecError.single(
        f"out of memory: the training needs at least {gib(total)} ({parts}); {gib(room[0])} is "
        f"available ({room[1]})",
        compiled.doc.loc(path) or compiled.doc.loc(("input", "shape")),
        format_path(path),
        code="memory",
        hint=hints[largest.path],
    )
