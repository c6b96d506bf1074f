"""``--data SOURCE``: the names and files a command may evaluate on instead of the run's own
data (:func:`parse_source`), a generated source's settings taken from the run's spec
(:func:`source_options`), the sources that carry only class labels and are refused for other
tasks, and a run's spec made to read the other source (:func:`with_source`).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnspec.analysis.tasks import CLASS_ONLY_SOURCES
from cnnspec.errors import Loc, UsageError, did_you_mean
from cnnspec.fileio import user_path
from cnnspec.paths import refuse_unreadable
from cnnspec.spec.sections import DATASETS
from cnnspec.training.data_sources import DATA_OPTION_FILE

if TYPE_CHECKING:
    from cnnspec.analysis.compiled import CompiledSpec
    from cnnspec.analysis.tasks import OutputTask


NAMED_SOURCES = tuple(DATASETS)  # what `data.source` may name


#: Where a ``--data`` source is located (training/data.py does not refuse it for listing its
#: images as both training and test: every one of them is a test image).
DATA_LOC = Loc(DATA_OPTION_FILE, 1, 1)


#: The sources generated from settings (``{shapes: {images, seed, noise, …}}``): the same
#: test images need the run's settings as well as its seed, and ``--data shapes`` takes them
#: from the run's spec (:func:`parse_source`) or an export's record (``split.options``).
OPTIONED_SOURCES = ("shapes",)


def source_options(compiled: CompiledSpec | None) -> dict[str, Any] | None:
    """The settings of the generated source a spec trains on (:data:`OPTIONED_SOURCES`), as its
    ``data.source`` gives them (``{}`` for the bare name: the defaults); ``None`` for another
    source or no spec."""
    source = (compiled.data or {}).get("source") if compiled is not None else None
    if source in OPTIONED_SOURCES:
        return {}
    if isinstance(source, dict) and len(source) == 1:
        ((kind, options),) = source.items()
        if kind in OPTIONED_SOURCES and isinstance(options, dict):
            return copy.deepcopy(options)
    return None


def parse_source(text: str, base: dict[str, Any] | None = None) -> str | dict[str, Any]:
    """``--data``: a named source, an ``.npz`` file, or a folder of class sub-folders.

    ``base``: the run's own ``data.source`` mapping. ``--data shapes`` on a run trained on a
    ``shapes`` mapping keeps its generator settings (above all its ``target``: a run that
    learnt areas or several outputs' targets is scored on them, not on the default target of
    its first output's task; and its image count and seed)."""
    refuse_empty_source(text)
    if text == "shapes" and base is not None and isinstance(base.get("shapes"), dict):
        return {"shapes": dict(base["shapes"])}
    if text in NAMED_SOURCES:
        return text
    path = user_path(text)
    refuse_unreadable(path, "--data to name a source, a file or a folder")
    if path.suffix.lower() == ".npz":
        if not path.is_file():
            raise UsageError(f"expected an .npz file for --data; {path} does not exist")
        return {"npz": str(path.resolve())}
    if path.suffix.lower() == ".csv":  # images and labels; every row is a test image
        if not path.is_file():
            raise UsageError(f"expected a CSV file for --data; {path} does not exist")
        source_csv: dict[str, Any] = {"csv": str(path.resolve()), "test_csv": str(path.resolve())}
        for key in ("image_size", "color_mode", "image_column", "label_column"):
            if base and key in base:
                source_csv[key] = base[key]
        return source_csv
    if path.is_dir():
        folder = str(path.resolve())
        source: dict[str, Any] = {"directory": folder, "test_directory": folder}
        for key in ("image_size", "color_mode"):
            if base and key in base:
                source[key] = base[key]
        return source
    hint = did_you_mean(text, NAMED_SOURCES)
    raise UsageError(
        f"expected --data to be {', '.join(NAMED_SOURCES)}, an .npz file or a folder of class "
        f"sub-folders; received {text!r}" + ("" if path.exists() or hint else " (no such file or folder)"),
        hint,
    )


#: What ``y_test`` holds for a task's output in a ``--data`` ``.npz`` (README's table of sources)
_NPZ_TARGETS = {
    "multilabel": "integer 0/1 labels (n, K)",
    "regression": "float values",
    "segmentation": "integer masks (n, H, W)",
}


def class_only_source(source: str | dict[str, Any]) -> str | None:
    """What ``source`` (:func:`parse_source`'s) is, said for a message, when it has class labels
    only (a dataset other than shapes, a folder of class folders, a CSV of labels); ``None``
    for a source that can hold other targets (shapes, an ``.npz`` file)."""
    if isinstance(source, str):
        return f"the dataset {source}" if source in CLASS_ONLY_SOURCES else None
    if "csv" in source:
        return f"the CSV {Path(source['csv']).name}"
    if "directory" in source:
        return f"the folder {Path(source['directory']).name}"
    return None


def refuse_class_only_data(tasks: Sequence[OutputTask], source: str | dict[str, Any]) -> None:
    """A UsageError when ``--data`` is a CSV, a folder or a dataset of class labels (``source``:
    :func:`parse_source`'s) for a run with an output that is no classifier (``tasks``): they are
    read as class labels (a CSV's ``label`` column, the class folders), so multi-label,
    regression or segmentation targets cannot come from them. Said first, with the ``.npz``
    that can carry them: the errors of reading it as class labels (a missing ``label`` column,
    "the data has class targets") led to renaming columns that were right."""
    given = class_only_source(source)
    others = [out for out in tasks if out.task != "classification"]
    if given is None or not others:
        return
    out = others[0]
    key = "y_test" if len(tasks) == 1 else "y_test_<output id> for each output"
    raise UsageError(
        f"expected --data to be an .npz file of test images and targets for the {out.task} output "
        f"{out.name}; received {given}, which holds class labels only",
        f"save the test images as x_test and their targets as {key} ({out.task}: "
        f"{_NPZ_TARGETS.get(out.task, 'its targets')}) in an .npz file and pass --data FILE.npz",
    )


def refuse_empty_source(text: str) -> None:
    """An empty ``--data`` (an unset shell variable) is refused: as a path it is the whole
    working folder, walked as a dataset."""
    if not text.strip():
        raise UsageError(
            "expected --data SOURCE; received an empty string",
            f"pass {', '.join(NAMED_SOURCES)}, an .npz file, a CSV or a folder of class sub-folders",
        )


def with_source(
    compiled: CompiledSpec, source: str | dict[str, Any], classes: Sequence[str | int] | None = None
) -> CompiledSpec:
    """The spec with ``data.source`` replaced (errors about it are located at ``<--data>``),
    and ``data.classes`` set to ``classes`` where given (an export's run's selection)."""
    from cnnspec.analysis.passes import compile_doc
    from cnnspec.spec.loader import SourceDoc

    data = copy.deepcopy(compiled.doc.data)
    section = dict(data.get("data") or {})
    section["source"] = source
    if classes is not None:
        section["classes"] = list(classes)
    splits_itself = isinstance(source, dict) and (
        ("directory" in source and "test_directory" not in source)
        or ("csv" in source and "test_csv" not in source)
    )
    if source not in ("digits", "shapes") and not splits_itself:
        section.pop("test_split", None)  # the source has its own test set
    data["data"] = section
    prefix = ("data", "source")
    locs = {p: loc for p, loc in compiled.doc.locs.items() if p[:2] != prefix}
    key_locs = {p: loc for p, loc in compiled.doc.key_locs.items() if p[:2] != prefix}
    locs[prefix] = DATA_LOC
    if isinstance(source, dict):
        for key in source:
            locs[(*prefix, key)] = DATA_LOC
    doc = SourceDoc(
        compiled.doc.file,
        data,
        locs,
        key_locs,
        zoo_variant=compiled.doc.zoo_variant,
        variant=compiled.doc.variant,
    )
    # (a finished run's spec stays one: --data is scored, never trained on)
    return compile_doc(doc, path=compiled.path, finished_run=compiled.finished_run)
