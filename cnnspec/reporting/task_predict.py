"""``cnnspec predict`` for models that are not a single classifier.

Per input and output:

- segmentation: a mask PNG (8-bit grayscale, one class index per pixel, the format a
  ``masks`` folder is read in) written to the output folder, and each class's pixel share;
- multilabel: the labels above the output's threshold, and every label's probability;
- regression: the predicted values;
- classification (an output of a multi-output model): the top-k classes.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnspec.analysis.tasks import OutputTask
from cnnspec.errors import PartlyWrittenError, UsageError, WriteError
from cnnspec.fileio import staged_folder, write_atomic

if TYPE_CHECKING:
    from cnnspec.reporting.images import InputFile

#: ``(integer pixels, an input file's pixels) → factor``: how an input is scaled (the pixels may
#: be the file's range alone, :attr:`cnnspec.reporting.images.Sample.extent`: a factor depends on
#: their dtype, lowest and highest value only)
Rescale = Callable[[bool, np.ndarray], "float | None"]


#: The PNG text entry every mask predict writes carries: a file in --out with the name of a mask
#: to write is replaced only when it has it (an earlier prediction), never the user's own file.
MASK_MARK = ("Software", "cnnspec predict")


def mask_png(mask: np.ndarray) -> bytes:
    """A class-index mask as an 8-bit grayscale PNG (indices > 255 do not occur: the check
    below keeps masks to 256 classes), marked as predict's (:data:`MASK_MARK`)."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(*MASK_MARK)
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(mask, dtype="uint8"), mode="L").save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


MASK_SUFFIX = "_mask.png"


def mask_paths(folder: Path, tasks: Sequence[OutputTask], labels: list[str]) -> dict[tuple[int, str], Path]:
    """Where each mask of one predict call is written, by (input number, output name): for
    each input in order, each segmentation output in the model's order.

    A name is ``STEM_mask.png``, or ``STEM_OUTPUT_mask.png`` for a model with several outputs
    (``STEM``: :func:`unique_stems`). Those can still coincide across pairs: inputs ``a.png``
    and ``a_b.png`` with outputs ``b_m`` and ``m`` both make ``a_b_m_mask.png``. The first pair
    keeps the name and each later one is numbered before the suffix (``a_b_m_2_mask.png``,
    the lowest number no other mask of the call has), so no mask replaces another and the
    names depend only on the inputs and outputs as given. Names are compared without case: on
    a case-insensitive file system ``A_mask.png`` is ``a_mask.png``."""
    multi = len(tasks) > 1
    stems = unique_stems(labels)
    wanted = {
        (index, out.name): f"{stem}{'_' + out.name if multi else ''}{MASK_SUFFIX}"
        for index, stem in enumerate(stems)
        for out in tasks
        if out.task == "segmentation"
    }
    taken = {name.casefold() for name in wanted.values()}  # (a number never makes a later pair's name)
    used: set[str] = set()
    paths: dict[tuple[int, str], Path] = {}
    for key, name in wanted.items():
        if name.casefold() in used:
            base, number = name.removesuffix(MASK_SUFFIX), 2
            while f"{base}_{number}{MASK_SUFFIX}".casefold() in taken:
                number += 1
            name = f"{base}_{number}{MASK_SUFFIX}"
            taken.add(name.casefold())
        used.add(name.casefold())
        paths[key] = folder / name
    return paths


def _is_predicted_mask(path: Path) -> bool:
    """Whether the file ``path`` is a mask predict wrote (its PNG text, read without decoding
    the pixels)."""
    from cnnspec.reporting.images import png_text

    return png_text(path).get(MASK_MARK[0]) == MASK_MARK[1]


def check_mask_targets(
    tasks: Sequence[OutputTask], labels: list[str], files: Collection[Path], folder: Path
) -> None:
    """A :class:`UsageError`, before anything is predicted or written, when a mask would
    replace one of the input ``files``, or a file in ``folder`` that predict did not write (the
    user's ``cat_mask.png`` beside ``cat.png``); earlier predictions are replaced. ``labels``:
    every input's, in order (the masks' names are made from them)."""
    segmentation = [out for out in tasks if out.task == "segmentation"]
    if not segmentation:
        return
    inputs = {Path(file).resolve() for file in files}
    for path in mask_paths(folder, tasks, labels).values():
        if not (path.exists() or path.is_symlink()):
            continue
        what = "one of the inputs" if path.resolve() in inputs else None
        if what is None and not _is_predicted_mask(path):
            what = "a file predict did not write"
        if what is not None:
            raise UsageError(
                f"expected --out to be free for the masks; {path} is {what}, and its mask would replace it",
                "choose another --out folder (default ./predictions), or move the file",
            )


def _stem(label: str) -> str:
    """A file-name stem from an input's label (``a/cat.png`` → ``cat``, ``batch.npy[3]`` →
    ``batch_3``)."""
    source = source_of(label)
    row = label[len(source) + 1 : -1] if source != label else ""
    text = Path(source).stem + (f"_{row}" if row else "")
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text) or "input"


def unique_stems(labels: list[str]) -> list[str]:
    """:func:`_stem` of each label, numbered from the second input with the same stem on
    (``a/x.png`` and ``b/x.png`` → ``x``, ``x_2``): one input's mask never replaces another's."""
    seen: dict[str, int] = {}
    taken = {_stem(label) for label in labels}
    stems = []
    for label in labels:
        stem = _stem(label)
        seen[stem] = seen.get(stem, 0) + 1
        if seen[stem] > 1:
            number = seen[stem]
            while f"{stem}_{number}" in taken:
                number += 1
            seen[stem] = number
            stem = f"{stem}_{number}"
            taken.add(stem)
        stems.append(stem)
    return stems


def _fit_mask(mask: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """``mask`` scaled (nearest neighbour: class indices are not blended) to the input image's
    ``size`` (height, width); as it is when the image had the model's size."""
    if size is None or tuple(mask.shape[:2]) == tuple(size):
        return mask
    from PIL import Image

    image = Image.fromarray(np.asarray(mask, dtype="uint8"), mode="L")
    return np.asarray(image.resize((size[1], size[0]), Image.Resampling.NEAREST))


def output_entry(
    out: OutputTask,
    row: np.ndarray,
    names: list[str],
    mask: Path | None,
    k: int,
    size: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """What one output predicts for one input (writing the mask PNG of a segmentation to
    ``mask``, its place from :func:`mask_paths`, at the input image's ``size`` when it was
    resized for the model)."""
    from cnnspec.reporting.model_graph import OutputKind
    from cnnspec.reporting.predictions import label_probabilities, probabilities
    from cnnspec.training.task_metrics import predicted_mask

    if out.task == "segmentation":
        if mask is None:
            raise ValueError(f"no mask file was named for the segmentation output {out.name!r}")
        classes = predicted_mask(row[None], out)[0]
        if out.classes > 256:
            raise ValueError("masks of more than 256 classes are not written as PNG")
        classes = _fit_mask(classes, size)
        write_atomic(mask, mask_png(classes))
        counts = np.bincount(classes.reshape(-1), minlength=out.classes) / classes.size
        return {
            "task": out.task,
            "mask": str(mask),
            "mask_size": [int(classes.shape[0]), int(classes.shape[1])],
            "pixel_share": {n: float(counts[i]) for i, n in enumerate(_names(names, out.classes))},
        }
    if out.task == "multilabel":
        labels = _names(names, out.units)
        probs = label_probabilities(row, out.loss.from_logits)
        chosen = [labels[i] for i in np.flatnonzero(probs > out.threshold)]
        return {
            "task": out.task,
            "labels": chosen,
            "threshold": out.threshold,
            "probabilities": {labels[i]: float(p) for i, p in enumerate(probs)},
        }
    if out.task == "regression":
        values = [float(v) for v in np.asarray(row).reshape(-1)]
        return {"task": out.task, "values": values, "names": _names(names, len(values))}
    kind = OutputKind(binary=out.binary, from_logits=out.loss.from_logits)
    probs = probabilities(row[None], kind)[0]
    return {"task": out.task, "top": top_classes(probs, _names(names, probs.shape[0]), k)}


def top_classes(probs: np.ndarray, names: list[str], k: int) -> list[dict[str, Any]]:
    """The ``k`` likeliest classes, likeliest first; of equal probabilities the lower index
    first, as argmax (evaluate, the confusion matrix, export checks) picks it: an int8
    export's probabilities come in steps of 1/256, so ties happen."""
    order = np.argsort(-probs, kind="stable")[:k]
    return [{"class": names[i], "index": int(i), "probability": float(probs[i])} for i in order]


def source_of(label: str) -> str:
    """The file an input came from: its label without the row of an array (``b.npy[3]`` → ``b.npy``)."""
    return label.rpartition("[")[0] if label.endswith("]") and "[" in label else label


def _file_of(sample: Any) -> str:
    """The file ``sample`` was read from, as the user named it (its label without the row of
    an array when it does not say): the key inputs are scaled by."""
    file = getattr(sample, "file", None)
    return str(file) if file is not None else source_of(sample.label)


def file_factor(source: str, integer: bool, pixels: np.ndarray, rescale: Rescale) -> float | None:
    """``rescale(integer, pixels)`` for the pixels of the input file ``source``; a
    :class:`UsageError` that names the file when its depth is unknown (int64 values above 255
    under ``data.rescale: auto``)."""
    try:
        return rescale(integer, pixels)
    except UsageError as exc:  # the depth is unknown: say which input, and the way out
        raise UsageError(
            f"{exc.args[0]} in {source}",
            "store it as uint8 or uint16 (or as floats scaled as the training images were), or "
            "train with an explicit data.rescale (the factor for integer pixels)",
        ) from None


#: The most inputs predict decodes, scales (as float32) and runs through the model at once: 256
#: RGB images of 224×224 are 39 MB as stored and 154 MB as floats, where a folder of 10,000 was
#: 1.5 GB read before the first prediction (and 6 GB as floats in one array).
PREDICT_CHUNK = 256


def scaled_groups(samples: list[Any], rescale: Rescale) -> Iterator[tuple[np.ndarray, list[tuple[int, Any]]]]:
    """The samples as scaled batches, each with its (index, sample) pairs.

    The factor is decided per input file and dtype, from that file's own pixels: a uint16
    ``.npy`` is scaled by its depth (1/65535), not by that of a PNG given with it; stacking the
    two first would make the PNG uint16 too. Inputs scaled alike share batches of at most
    :data:`PREDICT_CHUNK`: a folder of many images is never one float array at once. A sample
    that carries its file's range (``extent``: an array read in parts) is scaled by the whole
    file's, not by the rows at hand.
    """
    from cnnspec.training.imagefiles import scale_batch

    by_file: dict[tuple[str, str], list[tuple[int, Any]]] = {}
    for index, sample in enumerate(samples):
        by_file.setdefault((_file_of(sample), sample.pixels.dtype.name), []).append((index, sample))
    by_factor: dict[tuple[str, float | None], list[tuple[int, Any]]] = {}
    for (source, dtype), group in by_file.items():
        first = group[0][1]
        extent = getattr(first, "extent", None)
        pixels = extent if extent is not None else np.stack([s.pixels for _, s in group])
        factor = file_factor(source, first.integer, pixels, rescale)
        by_factor.setdefault((dtype, factor), []).extend(group)
    for (_, factor), group in by_factor.items():
        for start in range(0, len(group), PREDICT_CHUNK):
            part = group[start : start + PREDICT_CHUNK]
            yield scale_batch(np.stack([s.pixels for _, s in part]), factor), part


def streamed_groups(
    files: list[InputFile], shape: tuple[int, ...], rescale: Rescale
) -> Iterator[tuple[np.ndarray, list[tuple[int, Any]]]]:
    """:func:`scaled_groups` of the inputs ``files`` (planned from their headers, for a model
    whose input is ``shape``), read :data:`PREDICT_CHUNK` samples at a time: the next chunk is
    decoded when this one's batches have been used, so a folder of any size holds one chunk's
    pixels. Indices count over all inputs (the order of the answers); within a chunk, inputs
    scaled alike share batches as :func:`scaled_groups` makes them."""
    from cnnspec.reporting.images import read_chunks

    start = 0
    for chunk in read_chunks(files, shape, PREDICT_CHUNK):
        for batch, group in scaled_groups(chunk, rescale):
            yield batch, [(start + index, sample) for index, sample in group]
        start += len(chunk)
        del chunk  # (not held while the next chunk is decoded)


def predict_tasks(
    tasks: Sequence[OutputTask],
    names: Mapping[str, list[str]],
    samples: list[Any],
    folder: Path,
    k: int,
    rescale: Rescale,
    run: Callable[[np.ndarray], Any],
) -> list[dict[str, Any]]:
    """Every input's predictions, output by output (mask PNGs go to ``folder``, all or none), for samples
    read already (``predict`` reads its files a chunk at a time: :func:`predict_file_tasks`).

    ``tasks``: the model's outputs in order (from the run's spec, or an export's record);
    ``names``: each output's class, label or value names by output name (training's; an output
    not in it shows indices); ``rescale``: the pixel factor of
    an input file; ``run``: the model's raw outputs for a scaled batch (Keras' ``predict``, or
    a verified export's session for a single-output model).
    """
    labels = [sample.label for sample in samples]
    files = [sample.file for sample in samples if getattr(sample, "file", None) is not None]
    groups = scaled_groups(samples, rescale)
    return _task_results(tasks, names, labels, files, groups, folder, k, run)


def predict_file_tasks(
    tasks: Sequence[OutputTask],
    names: Mapping[str, list[str]],
    files: list[InputFile],
    shape: tuple[int, ...],
    folder: Path,
    k: int,
    rescale: Rescale,
    run: Callable[[np.ndarray], Any],
) -> list[dict[str, Any]]:
    """:func:`predict_tasks` for input ``files`` planned from their headers
    (:func:`~cnnspec.reporting.images.plan_inputs`), read a chunk at a time
    (:func:`streamed_groups`; ``shape``: the model's input): each mask PNG is staged as its
    chunk is predicted (:func:`~cnnspec.fileio.staged_folder`: all are moved into ``folder``
    once every input is answered, or none), and only the answers are kept."""
    labels = [label for file in files for label in file.labels]
    groups = streamed_groups(files, shape, rescale)
    return _task_results(tasks, names, labels, [file.path for file in files], groups, folder, k, run)


def _task_results(
    tasks: Sequence[OutputTask],
    names: Mapping[str, list[str]],
    labels: list[str],
    files: list[Path],
    groups: Iterable[tuple[np.ndarray, list[tuple[int, Any]]]],
    folder: Path,
    k: int,
    run: Callable[[np.ndarray], Any],
) -> list[dict[str, Any]]:
    """The answers for every input (``labels``: all of them, in order; ``files``: the files
    they were read from) from its scaled ``groups``, in the inputs' order."""
    check_mask_targets(tasks, labels, files, folder)
    # one name per (input, output) over the whole call, from the labels alone (the folder is
    # made by the first mask): the same names whichever chunk an input is read in
    masks = mask_paths(folder, tasks, labels)
    results: list[dict[str, Any]] = []
    try:
        # the masks wait in one scratch folder inside ``folder`` and are moved into place only
        # once every input is answered (predict's own stage joins this one, and commits after its
        # checks): a damaged image in a later chunk, a full disk or a Ctrl-C left the masks of
        # the chunks before it, new beside the earlier call's, with no answer to say which
        with staged_folder(folder):
            _answer_groups(tasks, names, groups, masks, k, run, results)
    except (UsageError, WriteError) as stop:
        # (a commit whose undo failed has some new masks in place: its error says which)
        if masks and not isinstance(stop, PartlyWrittenError):
            said = f"no mask file was written to {folder}"
            stop.hint = f"{stop.hint}; {said}" if stop.hint else said
        raise
    results.sort(key=lambda r: r.pop("order"))
    return results


def _answer_groups(
    tasks: Sequence[OutputTask],
    names: Mapping[str, list[str]],
    groups: Iterable[tuple[np.ndarray, list[tuple[int, Any]]]],
    masks: dict[tuple[int, str], Path],
    k: int,
    run: Callable[[np.ndarray], Any],
    results: list[dict[str, Any]],
) -> None:
    """Append each input's answers to ``results`` as its group is predicted (its masks written)."""
    from cnnspec.training.task_results import outputs_by_name

    for batch, group in groups:
        by_name = outputs_by_name(tasks, run(batch))
        for row, (index, sample) in enumerate(group):
            entry = {"order": index, "input": sample.label, "notes": list(sample.notes), "outputs": {}}
            for out in tasks:
                entry["outputs"][out.name] = output_entry(
                    out,
                    by_name[out.name][row],
                    list(names.get(out.name, [])),
                    masks.get((index, out.name)),
                    k,
                    sample.source_size,
                )
            results.append(entry)


def first_names(tasks: Sequence[OutputTask], names: Mapping[str, list[str]]) -> list[str]:
    """The names of the first output's classes, labels or values (its ``names`` when there are
    enough, else their indices): what predict shows as ``classes`` for a task model."""
    first = tasks[0]
    count = first.classes if first.task in ("classification", "segmentation") else first.units
    return _names(list(names.get(first.name, [])), count)


def describe(entry: dict[str, Any]) -> str:
    """One output's prediction as a line of text."""
    if entry["task"] == "segmentation":
        shares = ", ".join(f"{n} {p:.0%}" for n, p in entry["pixel_share"].items() if p > 0)
        return f"mask → {entry['mask']} ({shares})"
    if entry["task"] == "multilabel":
        probs = ", ".join(f"{n} {p:.2f}" for n, p in entry["probabilities"].items())
        return f"labels: {', '.join(entry['labels']) or '(none)'} (threshold {entry['threshold']:g}; {probs})"
    if entry["task"] == "regression":
        named = zip(entry.get("names") or [""] * len(entry["values"]), entry["values"], strict=True)
        return "values: " + ", ".join(f"{n} {v:.4g}".lstrip() for n, v in named)
    return "classes: " + ", ".join(f"{t['class']} {t['probability']:.2%}" for t in entry["top"])


def _names(names: list[str], count: int) -> list[str]:
    from cnnspec.reporting.run import names_or_indices

    return names_or_indices(names, count)
