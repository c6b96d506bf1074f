"""Data sources: ``digits``, ``shapes``, the Keras datasets, ``{npz: …}``, ``{directory: …}``,
``{csv: …}`` and ``{images: …, masks|labels|values: …}``.

Every source ends in one :class:`Dataset` (train/validation/test images with a channel axis,
targets of one kind, class names). The small sources are NumPy arrays; image folders and CSVs are
*streamed*: their splits are :class:`~cnnspec.training.filelist.ImageFiles` (file lists that
index like arrays) read batch by batch by :mod:`cnnspec.training.stream`, after a header check
of every file (:mod:`cnnspec.training.badfiles`). Splits are stratified and seeded, so the same
seed gives the same split (a folder's split is drawn from its file list, as it was from its
decoded images). Images keep their stored dtype (uint8 stays uint8, four times smaller
than float32); the pipeline scales them batch by batch (see ``data.rescale``).

Problems the user can fix (a missing file, a shape that does not fit ``input.shape``, labels
beyond the model's outputs, no network for a Keras dataset) are located :class:`SpecError`\\ s
raised before any training starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnspec.analysis.pixel_scaling import pipeline_scale
from cnnspec.analysis.settings_types import KERAS_CLASS_NAMES, KERAS_DATASETS, DataConfig, TrainConfig
from cnnspec.errors import SpecError, SpecPath
from cnnspec.fileio import sha256_file
from cnnspec.training import subsets
from cnnspec.training.data_arrays import (
    _images,
    _limit,
    _missing_classes,
    _pixel_max,
    _shapes,
    _source_path,
    _split,
)
from cnnspec.training.data_checks import check_fit, weight_key_notes
from cnnspec.training.data_sources import (
    _check_unique_names,
    _digits,
    _evaluation_source,
    _keras_dataset,
    _listing,
    _npz,
)
from cnnspec.training.data_targets import (
    _check_npz_names,
    _check_output_counts,
    _check_targets,
    _count,
    _names_for,
    _npz_kind,
    _npz_targets,
    check_mask_names,
)
from cnnspec.training.dataset import SOURCE, Dataset, source_error

if TYPE_CHECKING:
    from cnnspec.analysis.compiled import CompiledSpec
    from cnnspec.training.filelist import Listing


def load_dataset(
    compiled: CompiledSpec, config: TrainConfig, seed: int, *, test_only: bool = False
) -> Dataset:
    """Load, split and check the spec's data (located errors for every user mistake).
    ``test_only``: only the test split is used (evaluate, visualize and calibrate ``--data``), so an
    ``.npz`` of test arrays alone is read (:func:`_npz`)."""
    from cnnspec.analysis.datafit import mask_names_said
    from cnnspec.training import targets

    data = config.data
    names: Any = []
    said_names: dict[str, str] = {}  # a multi-output npz: where each output's names come from
    target: Any = "class"
    test_fraction = data.test_fraction
    test_key: dict[str, Any] = {"compiled": compiled, "key": "test_split"}
    source = data.describe()
    readers = {
        "image_masks": (targets.read_image_masks, "mask"),
        "image_labels": (targets.read_image_labels, "multilabel"),
        "image_values": (targets.read_image_values, "regression"),
    }
    if data.kind == "digits":
        x, y, names = _digits()
        x_train, y_train, x_test, y_test = _split(x, y, test_fraction, seed, **test_key)
    elif data.kind == "shapes":
        x, y, target, names = _shapes(data)
        x_train, y_train, x_test, y_test = _split(
            x, y, test_fraction, seed, stratify=target == "class", **test_key
        )
    elif data.kind in readers:
        reader, target = readers[data.kind]
        table = data.options.get("classes")
        if isinstance(table, list):  # a masks' classes list (a table's keys are unique already)
            where: SpecPath = (*SOURCE, "classes")
            _check_unique_names([str(n) for n in table], "data.source.classes", "classes", compiled, where)
        x, y, names = reader(data, compiled)
        if target == "mask" and table:  # (a table of colours names each class once)
            said = "data.source.classes"
            check_mask_names(
                [str(n) for n in table], config, None, said, compiled, (*SOURCE, "classes"), "classes"
            )
        if target == "regression":  # a values table's header names its columns
            where = (*SOURCE, "values")
            _check_unique_names(
                list(names), "the header of the values table", "column", compiled, where, columns=True
            )
        x_train, y_train, x_test, y_test = _split(x, y, test_fraction, seed, stratify=False, **test_key)
    elif data.kind in KERAS_DATASETS:
        x_train, y_train, x_test, y_test = _keras_dataset(data.kind, compiled)
        names = list(KERAS_CLASS_NAMES.get(data.kind, []))
    elif data.kind == "npz":
        assert data.path is not None
        several = _npz_targets(data.path, data, compiled, test_only)
        if several is not None:
            x_train, y_train, x_test, y_test, target, names, own_names = several
        else:
            x_train, y_train, x_test, y_test, names = _npz(data.path, compiled, test_only)
            target = _npz_kind(y_train, data, compiled)
        source["file_sha256"] = sha256_file(data.path)
    else:
        dataset = _streamed(compiled, config, seed, test_fraction, source)
        check_fit(dataset, compiled, config, test_only=test_only)
        return dataset
    origin = f" of {data.path.name}" if data.kind == "npz" and data.path is not None else ""
    # a --data file of test arrays alone: they stand for the training ones, and are called test
    train_what = "test" if x_train is x_test else "training"
    x_train = _images(x_train, compiled, train_what, origin)
    x_test = _images(x_test, compiled, "test", origin)
    if x_test.shape[1:] != x_train.shape[1:]:  # one model reads both: found here, not after training
        raise source_error(
            f"expected test images of the training images' shape {list(x_train.shape[1:])}; the "
            f"test images{origin} have shape {list(x_test.shape[1:])}",
            compiled,
            _source_path(data),
            hint="store the test images at the training images' size and channels",
        )
    pixel_max = _pixel_max(x_train, x_test, config, compiled, origin)
    y_train = _check_targets(y_train, target, train_what, compiled, x_train, names, config)
    y_test = _check_targets(y_test, target, "test", compiled, x_test, names, config)
    if isinstance(y_train, dict):  # every output's targets, in the model's order (not the first's alone)
        _check_output_counts({"training": (x_train, y_train), "test": (x_test, y_test)}, compiled)
    elif len(x_train) != _count(y_train) or len(x_test) != _count(y_test):
        raise source_error(
            f"expected as many labels as images; received {len(x_train)} training images with "
            f"{_count(y_train)} labels and {len(x_test)} test images with {_count(y_test)} labels",
            compiled,
        )
    if len(x_train) == 0 or len(x_test) == 0:
        which = "training" if len(x_train) == 0 else "test"
        raise source_error(f"expected at least one {which} image; the source has none", compiled)
    if target != "class" and (data.classes is not None or data.per_class is not None):
        from cnnspec.analysis.classes import not_class_targets

        key = "classes" if data.classes is not None else "per_class"
        message, hint = not_class_targets(target, data.kind)
        raise source_error(message, compiled, ("data", key), hint)
    if data.kind == "npz":
        assert data.path is not None
        if not isinstance(target, dict):
            _check_npz_names(names, target, y_train, y_test, data.path, compiled, config=config)
        else:  # each output's names: its class_names_<output>, or class_names given to it
            for output, kind in target.items():
                key = f"class_names_{output}" if own_names.get(output) else "class_names"
                said_names[output] = mask_names_said("npz", key)
                _check_npz_names(
                    names[output],
                    kind,
                    y_train[output],
                    y_test[output],
                    data.path,
                    compiled,
                    key,
                    config,
                    output,
                )
        # the factor is known only once the file is read: lock.json records it
        source["rescale"] = pipeline_scale(data, compiled.ir, x_train.dtype.kind in "iu", pixel_max)
    class_notes: list[str] = []
    source_names: list[str] | None = None
    if data.classes is not None:
        x_train, y_train, x_test, y_test, names, class_notes, source_names = _classes(
            x_train, y_train, x_test, y_test, names, data.classes, compiled, test_only=test_only
        )
    x_train, y_train, x_val, y_val = _split(
        x_train, y_train, data.validation_split, seed, target == "class", compiled=compiled
    )
    x_train, y_train = subsets.per_class(x_train, y_train, data.per_class, seed)
    x_train, y_train = _limit(x_train, y_train, data.limit, seed)
    x_val, y_val = _limit(x_val, y_val, data.limit, seed)
    x_test, y_test = _limit(x_test, y_test, data.limit, seed)
    target_names: dict[str, list[str]] = {}
    if isinstance(target, dict):
        target_names = {
            k: _names_for(kind, y_train[k], names.get(k) or [], y_val[k], y_test[k])
            for k, kind in target.items()
        }
        # class_names (part of content_hash, so kept for older runs) is the first *target's*,
        # not the model's first output's: each output's own names are target_names[output]
        names = next(iter(target_names.values()))
    else:
        names = _names_for(target, y_train, names, y_val, y_test)
    dataset = Dataset(x_train, y_train, x_val, y_val, x_test, y_test, names, source, target, target_names)
    dataset.pixel_max = pixel_max
    dataset.mask_names_said = said_names
    dataset.source_class_names = source_names
    if target == "class":
        dataset.notes = _missing_classes(names, {"training": y_train, "validation": y_val, "test": y_test})
    dataset.notes[:0] = class_notes
    check_fit(dataset, compiled, config, test_only=test_only)
    dataset.notes[len(class_notes) : len(class_notes)] = weight_key_notes(config, dataset)
    return dataset


def _classes(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    names: list[str],
    wanted: tuple[str | int, ...],
    compiled: CompiledSpec,
    *,
    test_only: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str], list[str], list[str]]:
    """``data.classes``: the listed classes only, relabelled in the listed order, names kept;
    the notes on numbers read as class names (:func:`subsets.class_notes`); and the data's
    class names before the selection (:attr:`Dataset.source_class_names`).
    ``test_only`` (``--data`` of a run trained with ``data.classes``): every test image must
    be of a selected class; one of another is refused naming its class (the selection left
    it out silently, and the run was scored on part of ``--data``), as a class folder is."""
    count = int(max(y_train.max(initial=0), y_test.max(initial=0))) + 1
    names = names if len(names) >= count else [str(i) for i in range(count)]
    try:
        labels = subsets.class_indices(wanted, names, count)
    except subsets.UnknownClass as exc:
        raise source_error(exc.message, compiled, ("data", "classes", exc.index), exc.hint) from None
    if test_only:
        _check_test_classes(y_test, names, labels, compiled)
    before = {"training": np.unique(y_train), "test": np.unique(y_test)}
    x_train, y_train = subsets.select(x_train, y_train, labels)
    x_test, y_test = subsets.select(x_test, y_test, labels)
    # (--data: its training arrays, if any, are not scored; a test-only file's stand for its test)
    selected = {"test": y_test} if test_only else {"training": y_train, "test": y_test}
    _check_selected(selected, before, names, labels, compiled)
    notes = subsets.class_notes(wanted, names, count)
    return x_train, y_train, x_test, y_test, [names[label] for label in labels], notes, list(names)


#: How the refusal of ``--data`` test images of classes the run does not have begins
#: (:func:`_check_test_classes`; reporting/held_out.py words it for ``--data``).
UNSELECTED_CLASSES = "expected --data test images of the run's classes only"


def _check_test_classes(
    y_test: np.ndarray, names: list[str], labels: list[int], compiled: CompiledSpec
) -> None:
    """A located error on ``data.classes`` when ``--data``'s test labels (``y_test``, labelled
    as the run's source before the selection) hold a class the selection does not pick."""
    found, counts = np.unique(y_test, return_counts=True)
    extra = [(int(label), int(n)) for label, n in zip(found, counts, strict=True) if int(label) not in labels]
    if not extra:
        return
    images = sum(n for _, n in extra)
    said = ", ".join(f"{names[label]!r} ({n} image{'s' if n != 1 else ''})" for label, n in extra[:10])
    more = f" and {len(extra) - 10} more" if len(extra) > 10 else ""
    raise source_error(
        f"{UNSELECTED_CLASSES} ({', '.join(repr(names[label]) for label in labels)}); received "
        f"{images} of {len(y_test)} test images of classes the run does not have: {said}{more}",
        compiled,
        ("data", "classes"),
        hint="leave the images of those classes out of --data (they would be left out unscored)",
    )


def _check_selected(
    selected: dict[str, np.ndarray],
    before: dict[str, np.ndarray],
    names: list[str],
    labels: list[int],
    compiled: CompiledSpec,
) -> None:
    """A located error on ``data.classes`` when it leaves the training or the test images
    (``selected``) empty: the run would train on nothing, or train and then fail to evaluate
    (an empty test set). ``before``: the labels each split had before the selection."""
    for split, y in selected.items():
        if len(y):
            continue
        had = ", ".join(repr(names[label]) for label in before[split].tolist()) or "none"
        raise source_error(
            f"expected {split} images of the classes data.classes selects; the source's {split} "
            f"images have none of {', '.join(repr(names[label]) for label in labels)}",
            compiled,
            ("data", "classes"),
            hint=f"select classes that have {split} images (the {split} images are of {had})",
        )


def _streamed(
    compiled: CompiledSpec, config: TrainConfig, seed: int, test_fraction: float, source: dict[str, Any]
) -> Dataset:
    """A folder or CSV as :class:`ImageFiles` splits: listed, header-checked, split by seed from
    the file list (a ``train/``/``validation/``/``test/`` folder as given); nothing decoded. Its
    notes are those of arrays: data.classes's, then class_weight's keys, then missing classes."""
    from cnnspec.training.filelist import ImageFiles, presplit_folders
    from cnnspec.training.imagefiles import channels_for

    data = config.data
    assert data.path is not None and data.image_size is not None
    where: SpecPath = (*SOURCE, data.kind)
    test_where: SpecPath = (*SOURCE, "test_directory" if data.kind == "directory" else "test_csv")
    given = presplit_folders(data.path) if data.kind == "directory" else None
    if given and data.test_path is not None:
        if not _evaluation_source(compiled):  # (--data X is X twice: its split layout is read before)
            _check_no_test_folder(given, data, compiled)
        given = None  # (evaluate's folder of classes named like splits: read as it is)
    if given:
        _check_split_settings(given, data, compiled)
    train = _listing(given["train"] if given else data.path, data, None, compiled, where)
    names = train.class_names
    chosen: list[int] | None = None
    if data.classes is not None:  # the listed classes only, relabelled in the listed order
        try:
            chosen = subsets.class_indices(data.classes, names, len(names))
        except subsets.UnknownClass as exc:
            raise source_error(exc.message, compiled, ("data", "classes", exc.index), exc.hint) from None
    # validation and test folders are labelled as the training folder; with data.classes they
    # need folders of the selected classes only (a folder of any other training class is fine)
    required = None if chosen is None else [names[label] for label in chosen]
    val = test = None
    if given:
        source["layout"] = "/".join(given)
        if "validation" in given:
            val = _listing(given["validation"], data, names, compiled, where, required)
        if "test" in given:
            test = _listing(given["test"], data, names, compiled, where, required)
    elif data.test_path is not None:
        test = _listing(data.test_path, data, names, compiled, test_where, required)
    listings = [x for x in (train, val, test) if x is not None]
    roots = [data.path if given is None else given["train"]]
    roots += [given[split] for split in ("validation", "test") if given and split in given]
    if data.test_path is not None:
        roots.append(data.test_path)
    class_notes: list[str] = []
    source_names: list[str] | None = None
    if chosen is not None:  # before the checks: a class left out is not read, so not checked
        class_notes = subsets.class_notes(data.classes or (), names, len(names))
        source_names = list(names)
        for listing in listings:
            keep, listing.labels = subsets.select(np.arange(len(listing.paths)), listing.labels, chosen)
            listing.paths = [listing.paths[i] for i in keep]
            listing.class_names = [names[label] for label in chosen]  # (labels index these now)
        names = [names[label] for label in chosen]
    splits = {"training": train, "validation": val, "test": test}
    if not _evaluation_source(compiled):
        _check_disjoint(
            {split: listing for split, listing in splits.items() if listing is not None},
            compiled,
            test_where if data.test_path is not None else where,
        )
    bad = _check_files(listings, data, compiled, where, roots)
    index = np.arange(len(train.paths))
    if test is None:
        index, y_train, test_index, y_test = _split(
            index, train.labels, test_fraction, seed, compiled=compiled, key="test_split"
        )
        test_paths = [train.paths[i] for i in test_index]
    else:
        y_train, test_paths, y_test = train.labels, test.paths, test.labels
    if val is None:
        index, y_train, val_index, y_val = _split(
            index, y_train, data.validation_split, seed, compiled=compiled
        )
        val_paths = [train.paths[i] for i in val_index]
    else:
        val_paths, y_val = val.paths, val.labels
    index, y_train = subsets.per_class(index, y_train, data.per_class, seed)
    train_paths = [train.paths[i] for i in index]
    if test is None and len(y_test) == 0 and len(train.paths):  # (a split keeps one image whole)
        raise source_error(
            f"expected at least one test image; the {len(train.paths)} image(s) of the source leave "
            "none to test on",
            compiled,
            where,
            hint="a test split needs at least 2 images: add images"
            + (", or select more classes with data.classes" if chosen is not None else ""),
        )
    if len(y_train) == 0 or len(y_test) == 0:
        which = "training" if len(y_train) == 0 else "test"
        raise source_error(f"expected at least one {which} image; the source has none", compiled, where)

    def files(paths: list[Path], y: np.ndarray) -> tuple[ImageFiles, np.ndarray]:
        order, y = _limit(np.arange(len(paths)), y, data.limit, seed)
        chosen = ImageFiles(
            paths, data.image_size, channels_for(data.color_mode or "rgb"),  # type: ignore[arg-type]
            cache=data.cache, on_bad_file=data.on_bad_file,
        )  # fmt: skip
        return chosen.subset(order), y

    x_train, y_train = files(train_paths, y_train)
    x_val, y_val = files(val_paths, y_val)
    x_test, y_test = files(test_paths, y_test)
    dataset = Dataset(x_train, y_train, x_val, y_val, x_test, y_test, names, source)
    dataset.bad_files = bad
    dataset.source_class_names = source_names
    dataset.notes = class_notes + weight_key_notes(config, dataset)
    dataset.notes += _missing_classes(names, {"training": y_train, "validation": y_val, "test": y_test})
    return dataset


def _check_disjoint(listings: dict[str, Listing], compiled: CompiledSpec, where: SpecPath) -> None:
    """A located error when one file is in two of the ``listings`` (``{"training": …,
    "validation": …, "test": …}``, the given ones): a ``test_directory`` naming the training
    folder, a ``test_csv`` naming the training CSV, a ``test/`` that links to ``train/``, or
    two CSVs naming one image would otherwise test (or validate) on images trained on, and the
    scores would say nothing. Paths are compared as files
    (:func:`~cnnspec.training.filelist.file_identity`), so a link, a second spelling of a path
    and a hard link (one file under two names, as ``cp -al`` or ``ln`` make splits) are the
    file they name."""
    from cnnspec.training.filelist import real_paths

    owner: dict[str, str] = {}  # real path → the first split that lists it
    shared: list[tuple[Path, str, str]] = []  # (path, first split, this split)
    for split, listing in listings.items():
        for path, real in zip(listing.paths, real_paths(listing.paths), strict=True):
            first = owner.setdefault(real, split)
            if first != split:
                shared.append((path, first, split))
    if not shared:
        return
    shown = "; ".join(f"{path} ({first} and {split})" for path, first, split in shared[:5])
    more = f" (and {len(shared) - 5} more)" if len(shared) > 5 else ""
    raise source_error(
        "expected the training, validation and test images to be different files; "
        f"{len(shared)} file(s) are in two of them: {shown}{more}",
        compiled,
        where,
        hint="an image in two sets is validated or tested on after being trained on, so the "
        "scores would flatter the model: give each set images of its own (a folder or CSV of "
        "its own, not the training one or a link to it)",
    )


def _check_split_settings(given: dict[str, Path], data: DataConfig, compiled: CompiledSpec) -> None:
    """A folder already split into ``train/``, ``test/`` (and a validation folder) is used as
    given: a ``test_split`` or ``validation_split`` the spec sets for a split it has would be
    ignored without a word, so it is a located error (as ``test_split`` is beside a
    ``test_directory``). Only settings the spec writes: the defaults apply to no such folder."""
    from cnnspec.training.filelist import SPLIT_NAMED_CLASSES_HINT, loose_images

    folders = ", ".join(f"{path.name}/" for path in given.values())

    def holds_images(path: Path) -> bool:
        try:  # (a split link that leads nowhere is said missing where it is read)
            return path.is_dir() and bool(loose_images(path))
        except OSError:
            return False

    # split folders that hold images, not class folders, are likely classes named like splits
    named_like_splits = any(holds_images(path) for path in given.values())
    for split, key in (("test", "test_split"), ("validation", "validation_split")):
        if split not in given or key not in compiled.data:
            continue
        value = data.test_split if key == "test_split" else data.validation_split
        shown = f"{value:g}" if isinstance(value, float) else repr(compiled.data[key])
        raise source_error(
            f"expected no {key} for a folder with its own {split} set ({folders} in {data.path}); "
            f"received {shown}",
            compiled,
            ("data", key),
            f"its {given[split].name}/ folder is the {split} set, used as given: remove {key}, or "
            f"name the folder of class folders itself ({given['train']}) to split it by {key}"
            + (f"; {SPLIT_NAMED_CLASSES_HINT}" if named_like_splits else ""),
        )


def _check_no_test_folder(given: dict[str, Path], data: DataConfig, compiled: CompiledSpec) -> None:
    """A located error on ``test_directory`` beside a ``directory`` laid out as ``train/``,
    ``validation/``, ``test/`` (``given``): read whole, its split folders would be taken for
    classes (a model trained on which split an image came from); its ``train/`` folder alone
    is not what the spec names. Split folders that hold images, not class folders, are likely
    classes named like splits, refused as they are without a ``test_directory``."""
    from cnnspec.training.filelist import SPLIT_NAMED_CLASSES_HINT, loose_images

    folders = ", ".join(f"{path.name}/" for path in given.values())

    def holds_images(path: Path) -> bool:
        try:  # (a split link that leads nowhere is no class folder of images)
            return path.is_dir() and bool(loose_images(path))
        except OSError:
            return False

    if any(holds_images(path) for path in given.values()):
        hint = SPLIT_NAMED_CLASSES_HINT
    else:
        train = f"or name {given['train']} as the directory to read its class folders alone"
        hint = (
            f"its {given['test'].name}/ folder is the test set: remove test_directory (to test on "
            f"{data.test_path}, move its class folders into {given['test']}), {train}"
            if "test" in given
            else f"put the test set's class folders in {data.path / 'test'} and remove test_directory, "
            + train
        )
    raise source_error(
        f"expected a directory of class folders beside a test_directory; {data.path} is laid out "
        f"as {folders} (a split layout{', with its own test set' if 'test' in given else ''})",
        compiled,
        (*SOURCE, "test_directory"),
        hint,
    )


def _check_files(
    listings: list[Listing],
    data: DataConfig,
    compiled: CompiledSpec,
    where: SpecPath,
    roots: list[Path] | None = None,
) -> list[tuple[Path, str]]:
    """The header check of every listed file: an error naming the bad ones (``on_bad_file:
    error``), or the bad ones taken out of ``listings`` and returned (``skip``). A class whose
    files of a listing were all bad is an error then, as an empty class folder is (``roots``:
    each listing's folder or CSV, to name it)."""
    from cnnspec.training.badfiles import SPEC_HINT, BadFilesError, check_files, describe

    # each file once: a folder or CSV may be listed twice (--data's, as training and test set)
    files = list(dict.fromkeys(path for listing in listings for path in listing.paths))
    total = len(files)
    bad = check_files(files)
    if not bad:
        return []
    if data.on_bad_file == "error":
        # (its own class: evaluate --data tells these as bad input files, not spec errors)
        message = "expected every image file to be readable; " + describe(bad, total)
        raise BadFilesError(source_error(message, compiled, where, hint=SPEC_HINT).diagnostics)
    dropped = dict(bad)
    for number, listing in enumerate(listings):
        keep = [i for i, path in enumerate(listing.paths) if path not in dropped]
        listed = [(path, int(label)) for path, label in zip(listing.paths, listing.labels, strict=True)]
        listing.paths = [listing.paths[i] for i in keep]
        listing.labels = listing.labels[keep]
        emptied = sorted({label for _, label in listed} - set(listing.labels.tolist()))
        if emptied:  # the class would stay, with no image to learn or to test it from
            label = emptied[0]
            files = [(path, dropped[path]) for path, of in listed if of == label]  # all dropped
            root = roots[number] if roots is not None and number < len(roots) else data.path
            raise _emptied_class_error(listing.class_names[label], files, root, compiled, where)
    return bad


def _emptied_class_error(
    name: str, files: list[tuple[Path, str]], root: Path | None, compiled: CompiledSpec, where: SpecPath
) -> SpecError:
    """The error of a class all of whose files in a folder or CSV (``root``) the header check
    found bad, which ``on_bad_file: skip`` would leave without images: the error an empty class
    folder gets, naming the files (the run stops before ``bad_files.txt`` is written)."""
    from cnnspec.training.badfiles import describe

    place = f" in {root}" if root is not None else ""
    return source_error(
        f"expected images in every class; every image of the class {name!r}{place} is a bad file "
        "(data.on_bad_file: skip would leave the class with none): " + describe(files),
        compiled,
        where,
        hint="replace the bad files with readable images, or remove the class's images and folder or rows",
    )
