"""The test data of a command's TARGET (:func:`load_test_data`): the run's own held-out split,
drawn again from the resolved spec and the recorded seed, or ``--data SOURCE`` read with the
run's preprocessing and checked against the model (image size, channels, targets per output),
with the notes that say how the images were found and scaled.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnspec.analysis.tasks import keras_classification_loss
from cnnspec.errors import UsageError
from cnnspec.fileio import user_path
from cnnspec.reporting.class_match import (
    OTHER_DATA_HINT,
    check_source_classes,
    classes_by_name,
    match_outputs,
    remap_folder_labels,
)
from cnnspec.reporting.data_option import (
    DATA_LOC,
    OPTIONED_SOURCES,
    class_only_source,
    parse_source,
    refuse_class_only_data,
    source_options,
    with_source,
)
from cnnspec.reporting.model_graph import ModelOutput, input_shape, model_outputs
from cnnspec.reporting.pixel_ranges import float_scale_notes, trained_on_unit_floats
from cnnspec.reporting.predictions import TestData
from cnnspec.reporting.run import Run, gone_data_error, moved_data, moved_data_note
from cnnspec.reporting.run_splits import (
    check_data_known,
    split_origin,
    split_seed,
    unknown_split_note,
    with_split,
)
from cnnspec.reporting.stand_in import stand_in_ids, stand_in_spec
from cnnspec.training.data import UNSELECTED_CLASSES
from cnnspec.training.data_arrays import pixel_range
from cnnspec.training.pipeline import pipeline_settings

if TYPE_CHECKING:
    from cnnspec.analysis.compiled import CompiledSpec
    from cnnspec.analysis.settings_types import TrainConfig


def load_test_data(run: Run, model: Any, data: str | None = None, split: str = "test") -> TestData:
    """The test split of the run's data (or of ``--data``), checked against the model
    (``split="validation"``: the images training held out to validate on, as
    ``cnnspec calibrate`` fits a temperature on them). A ``--data`` source that cannot be read
    as one (a folder of loose images, no class folders) is a bad input, a :class:`UsageError`
    (exit 2) told of ``--data`` (:func:`data_option_error`), not a spec's error at
    ``data.source.directory``: the run's spec is not what is wrong."""
    from cnnspec.errors import SpecError

    try:
        return _load_test_data(run, model, data, split)
    except SpecError as exc:
        told = data_option_error(exc) if data is not None else None
        if told is None:
            raise
        raise told from None


def data_option_error(exc: Any) -> UsageError | None:
    """The :class:`UsageError` for a spec error whose every error is located at ``<--data>``
    (:data:`DATA_LOC`: the source ``--data`` put in the spec's place), worded of ``--data``;
    ``None`` for any other (the run's spec's own errors stay spec errors)."""
    errors = [d for d in exc.diagnostics if d.severity == "error"]
    if not errors or any(d.loc is None or d.loc.file != DATA_LOC.file for d in errors):
        return None
    message = "\n".join(f"--data: {d.message}" for d in errors)
    hints = [d.hint for d in errors if d.hint]
    return UsageError(message, "; ".join(dict.fromkeys(hints)) or None)


def _load_test_data(run: Run, model: Any, data: str | None, split: str) -> TestData:
    """:func:`load_test_data`, its errors as they are raised."""
    from cnnspec.analysis.settings import training_config

    notes: list[str] = []
    check_data_known(run, data)
    data = _test_folder_of_layout(data, notes)
    compiled = run.compiled
    origin = split_origin(run)
    # --data shapes draws the run's images with the run's generator settings: its spec's source,
    # else (a file served alone, a model without a spec) the settings its run's split keeps
    recorded_base = origin.base() if origin is not None else None
    own = False  # --data is the run's own source (digits, shapes with its settings, its .npz)
    if compiled is None:
        assert data is not None  # (check_data_known)
        source = parse_source(data, recorded_base)
        base = None
        compiled = stand_in_spec(model, run.name, run.model_path)
        if class_only_source(source) is not None:  # the outputs' tasks, before the source is read
            # (with the source, a multi-output stand-in is refused first, hinting at spec keys)
            tasks = training_config(with_source(compiled, {"npz": "data.npz"})).tasks
            refuse_class_only_data(tasks, source)
    elif data is not None:
        base = (compiled.data or {}).get("source")
        if recorded_base is not None and source_options(compiled) is None:
            base = recorded_base  # (a served file's stand-in spec names no source of the run's)
        source = parse_source(data, base if isinstance(base, dict) else None)
        refuse_class_only_data(training_config(compiled).tasks, source)
    if data is not None:
        own = source == base or (origin is not None and source in (origin.source, recorded_base))
        # a stand-in spec (a served file's, a model's without one) selects nothing: the record of
        # the run it came from keeps the run's data.classes, read as the run read its data
        kept = origin.classes if origin is not None and "classes" not in (compiled.data or {}) else None
        compiled = with_source(compiled, source, kept)
    config = training_config(compiled)
    if origin is not None:  # a checkpoint's, an export's: its run's split of the data
        config = with_split(config, origin)
    seed, recorded = split_seed(run, config)
    if config.data.splits_test:
        if not recorded:
            notes.append(unknown_split_note(run, seed, split))
        elif origin is not None and origin.source in (None, config.data.kind):  # (the run's source)
            which = "validation" if split == "validation" else "test"
            if origin.source in OPTIONED_SOURCES and origin.options is None:
                notes.append(
                    f"the {which} split is drawn with the seed and fractions of the run it was "
                    f"exported from (seed {seed}), but its record keeps no settings of the run's "
                    f"{origin.source} source (exported by an older cnnspec): the images were "
                    f"generated with {origin.source}' defaults, so they may not be the run's "
                    f"{which} images"
                )
            else:
                notes.append(f"the {which} split is drawn {origin.where} (seed {seed})")
    # --data is checked against the model by test_split, which knows the run's classes and says
    # what --data did wrong; the spec's own fit checks would blame the model's last layer
    from cnnspec.errors import SpecError

    test_only = data is not None and split == "test"
    if own and config.data.classes is not None and not config.data.streamed:
        # the run's own source of a run trained with data.classes: read whole as the run read
        # it, its selection picking the run's classes (a test image of another class is no
        # mistake of --data here, and the test split is the run's own)
        test_only = False
    try:
        dataset = _load_for_test(
            compiled, config if data is None else _fit_unchecked(config), seed, test_only
        )
    except SpecError as exc:
        from cnnspec.training.badfiles import BadFilesError, data_error

        if data is not None and isinstance(exc, BadFilesError):  # bad input files, not a spec's error
            raise data_error(exc.diagnostics[0].message) from None
        misfit = (_data_misfit(exc) or _shape_misfit(exc, model)) if data is not None else None
        if misfit is None and data is None:
            raise gone_data_error(exc, run) from None
        if misfit is None:
            raise
        raise misfit from None
    # a streamed source is hashed as the run hashed it (names, sizes and times, or --hash-content)
    dataset.hash_content = ((run.lock or {}).get("data") or {}).get("hash") == "content"
    if run.compiled is None:  # the stand-in's made-up ids (stand_in_ids) back to the model's names
        config = _named_as_model(config, dataset, model, run.model_path)
        notes.extend(loss_notes(config, model_outputs(model, run.model_path)))
    test = test_split(run, model, dataset, compiled, config, data=data, notes=notes, split=split)
    from cnnspec.training.filelist import ImageFiles

    if data is not None and isinstance(test.x, ImageFiles):
        from cnnspec.training.badfiles import DATA_HINT

        # a file of --data that fails to decode when indexed (an export's evaluation, --tta,
        # visualize): a bad input file with --data's hint, as evaluate's stream tells it
        test.x.bad_hint = DATA_HINT
    test = _decodable(test)
    if data is not None and dataset.bad_files:  # (--data is read whole as the test set: all of them)
        from cnnspec.training.badfiles import skipped_note

        # the header check's skips, said as training says them: they were left out unsaid
        test.notes.append(skipped_note(dataset.bad_files))
    if data is not None:
        # scoring other data is what --data is for, but not scoring the run's training images
        # as unseen ones unsaid (calibrate refuses the run's own images by test.own)
        from cnnspec.reporting.own_data import own_images, seen_note

        test.own = own_images(run, test)
        seen = seen_note(test.own, data, run.name)
        if seen is not None:
            test.notes.append(seen)
        limit = config.data.limit
        if limit is not None and len(test.x) >= limit:
            # (read as the run read its data: a folder of 30 images was scored on 10, unsaid)
            test.notes.append(
                f"--data is read as the run's spec reads its data, with data.limit: {limit}: at most "
                f"{limit} of its images are scored"
            )
    return test


def _decodable(test: TestData) -> TestData:
    """``test`` without the image files that fail to decode where the source skips bad files
    (``data.on_bad_file: skip``), with evaluate's note: every command then scores, counts and
    indexes the images evaluate's stream reads (:func:`cnnspec.training.stream.readable`)."""
    from cnnspec.training.filelist import ImageFiles

    if not isinstance(test.x, ImageFiles):
        return test
    from cnnspec.training.stream import readable

    test.x, test.y, dropped = readable(test.x, test.y)
    if dropped:
        test.notes.append(f"left out {dropped} image file(s) that failed to decode")
    return test


def _test_folder_of_layout(data: str | None, notes: list[str]) -> str | None:
    """``--data`` of a folder laid out as ``train/``, ``validation/``, ``test/`` of class folders:
    its ``test/`` folder, with a note (read whole, the split folders would be taken for
    classes); refused, naming the folders to pass instead, where it has no ``test/`` folder.
    ``data`` as it is for anything else, a folder whose split-named folders hold images (classes
    that are named train, test …) included."""
    from cnnspec.training.filelist import presplit_folders, subfolders

    if data is None or not data.strip():
        return data
    path = user_path(data)
    given = presplit_folders(path)
    try:  # (a split link that leads nowhere: the folder is read as it is, and said missing there)
        if not given or not all(subfolders(folder) for folder in given.values()):
            return data
    except OSError:
        return data
    listed = ", ".join(f"{folder.name}/" for folder in given.values())
    if "test" not in given:
        choices = " or ".join(f"--data {folder}" for split, folder in given.items() if split != "train")
        raise UsageError(
            f"expected --data to be a folder of class folders or a split layout with a test/ folder; "
            f"{path} is laid out as {listed} with no test/ folder",
            f"pass {choices or '--data ' + str(given['train'])} to read one split's class folders",
        )
    notes.append(f"{path} is laid out as {listed}: its test/ folder is read ({given['test']})")
    return str(given["test"])


def loss_notes(config: TrainConfig, outputs: list[ModelOutput]) -> list[str]:
    """What evaluate says of the loss of a model without a spec (``config``: its stand-in's,
    ``outputs``: :func:`model_outputs`) where it is not the classification loss the model file
    records (one cnnspec has no equal of, or that the output's task does not take): the loss
    reported is then the stand-in's, and not what the model trained on."""
    from cnnspec.analysis.settings_training import name_and_settings

    notes = []
    for task, out in zip(config.tasks, outputs):
        recorded = out.classification_loss
        if recorded is None or (
            out.rebuilt_loss is not None and name_and_settings(out.rebuilt_loss)[0] == task.loss.name
        ):
            continue
        which = f"{out.name}'s loss" if len(outputs) > 1 else "the loss"
        settings = " with settings cnnspec's has not" if keras_classification_loss(recorded) else ""
        notes.append(
            f"{which} is {task.loss.name}: the model file records {recorded}{settings}, which cnnspec "
            "does not compute for this output without a spec (pass --spec SPEC with the loss it trained on)"
        )
    return notes


def _named_as_model(config: TrainConfig, dataset: Any, model: Any, path: Path) -> TrainConfig:
    """``config`` of a stand-in spec with its outputs named as ``model`` names them, and the
    per-output targets of ``dataset`` (changed in place) keyed by those names: Keras compiles
    a multi-output model's losses and metrics by its output names, and the report names the
    outputs the model has, not the ids made up where a name is no id (:func:`stand_in_ids`).
    Unchanged where every name is its id, or where names repeat (one layer output twice: a
    dict by name cannot tell them apart)."""
    outputs = model_outputs(model, path)
    names = dict(zip(stand_in_ids(outputs), (out.name for out in outputs)))
    if all(key == name for key, name in names.items()) or len(set(names.values())) < len(names):
        return config

    def renamed(value: Any) -> Any:
        return (
            {names.get(key, key): item for key, item in value.items()} if isinstance(value, dict) else value
        )

    for attribute in ("y_train", "y_val", "y_test", "target", "target_names"):
        setattr(dataset, attribute, renamed(getattr(dataset, attribute)))
    tasks = tuple(replace(task, name=names.get(task.name, task.name)) for task in config.tasks)
    return replace(config, tasks=tasks)


def assumed_rescale_note(model_name: str, factors: set[float]) -> list[str]:
    """The note that a model file's pixel factor was assumed (``factors``: those applied to
    integer pixels, 1 / their depth): nothing says what its training did (no run folder with
    its spec, no export record, no rescaling layer of its own), and a run trained with another
    ``data.rescale`` (0.01, or none) answers otherwise; ``--spec`` gives the spec's (predict's
    and evaluate's ``--data`` of image files alike)."""
    if not factors:
        return []
    said = ", ".join(f"1/{1 / factor:.6g}" for factor in sorted(factors, reverse=True))
    return [
        f"pixels multiplied by {said}, assumed: {model_name} comes with no run folder, spec or "
        "export record to say what its training did, nor a rescaling layer; --spec SPEC applies the "
        "spec's data.rescale"
    ]


def test_split(
    run: Run,
    model: Any,
    dataset: Any,
    compiled: CompiledSpec,
    config: TrainConfig,
    *,
    data: str | None = None,
    notes: list[str] | None = None,
    split: str = "test",
) -> TestData:
    """The test part of a loaded :class:`~cnnspec.training.dataset.Dataset`, checked against the
    model, with the run's class names (``data``: the ``--data`` text it came from, if any;
    ``split="validation"``: its validation part instead)."""
    notes = list(notes or [])
    expected = input_shape(model)
    if dataset.sample_shape != expected:
        raise UsageError(
            f"expected data of shape {list(expected)} (the model's input); the {config.data.kind} "
            f"images have shape {list(dataset.sample_shape)}"
        )
    x, y = (dataset.x_val, dataset.y_val) if split == "validation" else (dataset.x_test, dataset.y_test)
    names = list(dataset.class_names)
    by_name = bool(run.class_names) and data is not None and config.data.streamed
    if by_name:
        # matched by name first: a class the run lacks is named, not only counted (a folder of
        # a data.classes run's whole source has more classes than the model)
        y, names = remap_folder_labels(y, names, run.class_names or [])
    if data is not None and dataset.target == "class" and not config.task_path:
        check_source_classes(names, run.class_names or [], config)
        y, names = classes_by_name(y, names, run.class_names or [], config, notes)
    elif data is not None and not by_name:  # other tasks' names are matched (reordered) by name
        y, names = match_outputs(run, dataset, config, y, names, notes)
    if not by_name and run.class_names and len(run.class_names) >= len(names):
        names = list(run.class_names)
    # the run's data read where it was moved to (run_spec): its files hashed by their names before
    moved = moved_data(config, run.lock) if data is None and run.compiled is compiled else []
    content_hash = dataset.content_hash(moved)
    recorded = ((run.lock or {}).get("data") or {}).get("content_hash") if data is None else None
    matches = None if recorded is None else recorded == content_hash
    said = moved_data_note(config, run.lock) if moved else None
    if said is not None:
        notes.append(said)
    if data is None and compiled.finished_run:
        notes.extend(weight_key_notes(config, dataset))
    if matches is False:
        notes.append(
            "the splits differ from those the run was trained with (the data, or how it is split, "
            f"changed: content hash): the {'validation' if split == 'validation' else 'test'} figures may "
            "include images the model trained on"
        )
    settings = pipeline_settings(compiled, config, dataset)
    # --data of image files for a run trained on [0, 1] floats whose model rescales: as predict
    # scales a file's pixels (file_rescale), not the 0-255 its rescaling layer never saw
    unscaled = data is not None and dataset.integer_pixels and settings.rescale is None
    if unscaled and config.data.rescale == "auto" and trained_on_unit_floats(run):
        settings = replace(settings, rescale=1.0 / dataset.pixel_max)
    if data is not None and not dataset.integer_pixels and isinstance(x, np.ndarray) and x.dtype.kind == "f":
        notes.extend(float_scale_notes(run, pixel_range(x), f"--data {data}"))
    if run.compiled is None and data is not None and dataset.integer_pixels and settings.rescale is not None:
        # a model file alone (its stand-in spec): the factor is cnnspec's default, not known
        notes.extend(assumed_rescale_note(run.model_path.name, {settings.rescale}))
    return TestData(
        x=x,
        y=y,
        class_names=names,
        settings=settings,
        compiled=compiled,
        config=config,
        source=dict(dataset.source),
        content_hash=content_hash,
        matches_run=matches,
        notes=notes,
        output_names=_output_names(run, dataset, config, names),
    )


def weight_key_notes(config: TrainConfig, dataset: Any) -> list[str]:
    """What to say of a run whose ``training.class_weight`` keys cnnspec refuses now (a class
    ``data.classes`` left out, two keys weighing one class): it was trained by an older cnnspec,
    which read them otherwise than the spec says. The run's model is evaluated all the same (the
    weights only matter to training); the note tells the figures' reader, and how a new run goes."""
    from cnnspec.training.data_checks import weight_key_refusals

    return [
        f"training.class_weight.{key}: {message}; this run was trained before cnnspec refused such "
        "a key, so its class weights may not be the ones the spec reads as (fix the key to train it "
        "again: validate, train and --resume refuse it)"
        for key, message, _ in weight_key_refusals(config, dataset)
    ]


def _output_names(run: Run, dataset: Any, config: TrainConfig, names: list[str]) -> dict[str, list[str]]:
    """Each output's names: the run's (:meth:`Run.output_names`) where they name at least as
    many as the data's, else the data's (its names of the output's target; one output:
    ``names``, the test split's class names)."""
    by_output = getattr(dataset, "target_names", None) or {}
    found: dict[str, list[str]] = {}
    for position, out in enumerate(config.tasks):
        data = list(by_output.get(out.name, [])) if by_output else (names if position == 0 else [])
        recorded = run.output_names(out.name)
        found[out.name] = recorded if recorded and len(recorded) >= len(data) else [str(n) for n in data]
    return found


def _fit_unchecked(config: TrainConfig) -> TrainConfig:
    """``config`` for loading ``--data``: without the class-count and ``class_weight`` checks
    of the data against the model, which :func:`check_source_classes` makes for evaluation (a
    classifier's; other tasks keep their checks)."""
    if config.task_path:
        return config
    loss = replace(config.loss, name="sparse_categorical_crossentropy") if config.binary else config.loss
    data = config.data
    if data.streamed and data.classes is not None:
        # a folder's or CSV's classes are matched to the run's by name (remap_folder_labels): one of some of
        # the selected classes is scored in the run's order, one with others is refused naming
        # them; the run's selection applied to it wanted every selected class in it
        data = replace(data, classes=None)
    return replace(config, output_units=0, class_weight=None, loss=loss, data=data)


def _load_for_test(compiled: CompiledSpec, config: TrainConfig, seed: int, test_only: bool) -> Any:
    """The dataset whose test images are scored (``test_only``: ``--data``'s, the test split
    alone used). A file whose training images are too few for the validation split (which it
    need not have) is read again without that split: it was refused for it, whatever its own
    mistake was. Otherwise the split is drawn as for the run, so the data's content hash is
    what training recorded (calibrate refuses the run's own data by it)."""
    from cnnspec.errors import SpecError
    from cnnspec.training.data import load_dataset

    try:
        return load_dataset(compiled, config, seed, test_only=test_only)
    except SpecError as exc:
        if not (test_only and any(d.path == "data.validation_split" for d in exc.diagnostics)):
            raise
    unsplit = replace(config, data=replace(config.data, validation_split=0.0))
    return load_dataset(compiled, unsplit, seed, test_only=test_only)


#: How the loader's shape check begins (cnnspec.analysis.datafit.check_sample_shape).
_SHAPE_MISFIT = "expected data of shape "


def _shape_misfit(exc: Any, model: Any) -> UsageError | None:
    """The ``--data`` error for images of another shape than the model takes: the loader's
    hint is a spec author's ("set input.shape …, add a resizing layer"), which a trained model
    cannot take; ``None`` for any other error."""
    for diagnostic in exc.diagnostics:
        if diagnostic.message.startswith(_SHAPE_MISFIT):
            side = "×".join(str(d) for d in input_shape(model))
            said = diagnostic.message.replace("(input.shape)", "(its input)")
            return UsageError(
                f"expected --data that fits the trained model; {said}",
                f"pass --data images of {side} (resized first if need be), or --spec with a spec that "
                "reads them as the model takes them",
            )
    return None


def _data_misfit(exc: Any) -> UsageError | None:
    """The ``--data`` error for a spec error about the data not fitting the model (code
    ``data``) that the loader located in the model (its last layer: "give the last layer 9
    filters"): the model is trained, so it is ``--data`` that does not fit, as a classifier's
    :func:`check_source_classes` says (``None``: ``exc`` is another error, located at
    ``--data`` already or about something else, raised as it is)."""
    for diagnostic in exc.diagnostics:
        if diagnostic.code != "data" or (diagnostic.loc is not None and diagnostic.loc.file == DATA_LOC.file):
            continue
        if diagnostic.message.startswith(UNSELECTED_CLASSES):  # classes the run lacks, named
            return UsageError(diagnostic.message, diagnostic.hint)
        if str(diagnostic.path).startswith("data.classes"):  # the run's selection, applied to --data
            return UsageError(
                "expected --data in the labels the run's data.classes picks its classes from (it "
                f"picks them from --data too); {diagnostic.message}",
                "pass --data with the run's classes named (class_names, class folders), or labelled "
                "as the run's source labels them (before data.classes picked and reordered them)",
            )
        return UsageError(
            f"expected --data that fits the trained model; {diagnostic.message}", OTHER_DATA_HINT
        )
    return None
