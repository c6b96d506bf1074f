"""``--ensemble OTHER`` of ``cnnspec evaluate`` and ``cnnspec predict``: the answer of several
trained models at once, the mean of their probabilities (a classifier's classes, each label of
a multi-label output, each pixel's classes of a segmentation; :mod:`cnnspec.reporting.tta`
averages them, over ``--tta``'s mirror images too).

The first model (the command's target) decides the data, its scaling and the names; every
other member is checked against it before anything is predicted, and refused where the mean
would mean nothing or mislead:

- **the same input and outputs**: the image shape, every output's shape, task, and whether it
  answers in logits or probabilities;
- **the same classes in the same order** (the names their runs record);
- **the same pixel scale**: a member trained on pixels scaled otherwise (``data.rescale``, or
  a model that rescales itself) would be given images it never saw;
- **none of the test images among its training images**: a member trained on another split of
  the data (another ``training.seed`` draws another test split of a source without one) may
  have learnt the very images the ensemble is scored on. Each member's training and validation
  images are compared with the target's test images, image by image (a streamed source: file
  by file; :func:`~cnnspec.training.overlap.seen_images`), and any shared one refuses the member.

A model file outside a run folder has no data to check: it is taken with a note.
``cnnspec export --ensemble`` checks its models here too, and writes them as one file
(:mod:`cnnspec.export.ensemble_model`).
"""

from __future__ import annotations

import filecmp
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnspec.errors import UsageError, printable
from cnnspec.reporting.model_graph import input_shape
from cnnspec.reporting.predictions import TestData
from cnnspec.reporting.run import Run


@dataclass
class Member:
    """A model of the ensemble other than the target: as named on the command line, its run
    (or model file) and the loaded Keras model; ``temperature``: its classifier's probabilities
    are scaled by it before the mean (:mod:`cnnspec.reporting.temperature`)."""

    given: Path
    run: Run
    model: Any
    temperature: float = 1.0

    @property
    def label(self) -> str:
        return printable(str(self.given))


def load_members(paths: Sequence[Path], allow_outside: bool | None = None) -> list[Member]:
    """Each ``--ensemble`` path located (a run folder or a model file) and its model loaded
    (``allow_outside``: the command's ``--allow-outside``, ``None``: as the command set it)."""
    from cnnspec.reporting.evaluation import listed_outputs
    from cnnspec.reporting.run import locate
    from cnnspec.training.modelfile import load_model

    members = []
    for path in paths:
        run = locate(path, None, allow_outside=allow_outside)
        members.append(Member(path, run, listed_outputs(load_model(run.model_path))))
    return members


def output_shapes(model: Any) -> list[tuple[int | None, ...]]:
    """Every output's shape without the batch axis, in the model's order."""
    return [tuple(output.shape[1:]) for output in model.outputs]


def check_members(
    target: Run, model: Any, members: Sequence[Member], test: TestData | None, *, checks_split: bool
) -> list[str]:
    """Refuse (:class:`UsageError`) a member that cannot join ``target`` (see the module's
    docstring); return the notes of those that join unchecked. ``test``: the target's test
    split (``None``: predicting files, where the models and how they scale files are compared);
    ``checks_split``: whether that split is the target's own data (not ``--data``), whose
    images must not be among a member's training images."""
    notes: list[str] = []
    _check_distinct(target, members)
    shape, outputs = input_shape(model), output_shapes(model)
    for member in members:
        if input_shape(member.model) != shape:
            raise UsageError(
                f"expected every model of the ensemble to take {target.name}'s input "
                f"{list(shape)}; {member.label} takes {list(input_shape(member.model))}"
            )
        if output_shapes(member.model) != outputs:
            raise UsageError(
                f"expected every model of the ensemble to answer as {target.name} does (outputs "
                f"{_shapes(outputs)}); {member.label} answers {_shapes(output_shapes(member.model))}"
            )
        if _answers(member.run, member.model) != _answers(target, model):
            raise UsageError(
                f"expected every model of the ensemble to answer as {target.name} does "
                f"({_answers_text(_answers(target, model))}); {member.label} answers "
                f"{_answers_text(_answers(member.run, member.model))}",
                "ensemble models trained for the same tasks with the same output activations and loss",
            )
        if target.class_names and member.run.class_names and member.run.class_names != target.class_names:
            raise UsageError(
                f"expected every model of the ensemble to have {target.name}'s classes in its order "
                f"({', '.join(target.class_names)}); {member.label} has "
                f"{', '.join(member.run.class_names)}",
                "ensemble models trained on the same classes (data.classes keeps a subset in an order)",
            )
        if member.run.compiled is None:
            lost = member.run.run_dir  # a run folder that lost its resolved.yaml: not "outside"
            if lost is not None and test is not None and checks_split:
                # (its lock.json says it is a run; plain `evaluate` of it refuses it the same way)
                raise UsageError(
                    f"cannot tell whether --ensemble {member.label} trained on {target.name}'s test "
                    f"images: resolved.yaml, the run's spec that names its data, is missing from the "
                    f"run folder {printable(str(lost))}",
                    "put back the resolved.yaml `cnnspec train` wrote, or evaluate the ensemble on "
                    "other images (--data SOURCE)",
                )
            what = (
                f"a run folder without its resolved.yaml ({printable(str(lost))})"
                if lost is not None
                else "a model file outside a run folder"
            )
            notes.append(
                f"--ensemble {member.label}: {what}, given the images as {target.name} takes them"
                + ("; whether it trained on the test images cannot be checked" if test is not None else "")
            )
            continue
        if test is not None:
            _check_data(member, test, target, checks_split)
        else:
            _check_file_scale(member, target, model)
    return notes


def _check_distinct(target: Run, members: Sequence[Member]) -> None:
    """Refuse a model given twice (its file, through another name, or a copy of it byte for
    byte): the mean would weigh it double, and "an ensemble" would be one model."""
    seen: list[tuple[Path, str]] = [(target.model_path, target.name)]
    for member in members:
        path = member.run.model_path
        earlier = next((name for other, name in seen if _same_file(path, other)), None)
        if earlier is not None:
            raise UsageError(
                f"--ensemble {member.label} is the model {printable(earlier)} already is "
                f"({printable(str(path))}): the mean would weigh it twice",
                "name each model once; an ensemble averages models trained apart (another seed, "
                "another spec)",
            )
        seen.append((path, member.label))


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are one file, or two files of the same bytes."""
    from cnnspec.fileio import same_file

    if same_file(a, b):
        return True
    try:
        return a.is_file() and b.is_file() and filecmp.cmp(a, b, shallow=False)
    except OSError:  # (read when the model is loaded: its own error there)
        return False


def _check_file_scale(member: Member, target: Run, model: Any) -> None:
    """For files to predict: the member scales image files (8-bit) and float arrays as the
    target does (what ``predict`` multiplies their pixels by)."""
    from cnnspec.reporting.pixel_ranges import file_rescale

    for integer in (True, False):
        mine, theirs = file_rescale(target, model, integer), file_rescale(member.run, member.model, integer)
        if mine != theirs:
            raise UsageError(
                f"expected every model of the ensemble to take pixels scaled as {target.name}'s are "
                f"(× {mine}); {member.label} was trained on pixels × {theirs}",
                "ensemble models trained with the same data.rescale (and input layers)",
            )


def _answers(run: Run, model: Any) -> list[tuple[str, bool]]:
    """Each output's task and whether it answers in logits: the run's spec, else what the task
    rules read from the model. The mean is taken of probabilities read this way."""
    from cnnspec.reporting.stand_in import model_tasks

    config = run.config
    tasks = (
        config.tasks if config is not None and config.tasks else model_tasks(model, run.name, run.model_path)
    )
    return [(task.task, task.loss.from_logits) for task in tasks]


def _answers_text(answers: list[tuple[str, bool]]) -> str:
    return ", ".join(f"{task} in {'logits' if logits else 'probabilities'}" for task, logits in answers)


def _shapes(shapes: list[tuple[int | None, ...]]) -> str:
    return ", ".join(str(list(shape)) for shape in shapes)


def _check_data(member: Member, test: TestData, target: Run, checks_split: bool) -> None:
    """The member's pixel scale, and its training and validation images against ``test``."""
    from cnnspec.reporting.run_splits import split_seed
    from cnnspec.training.data import load_dataset
    from cnnspec.training.overlap import seen_images
    from cnnspec.training.pipeline import pipeline_settings

    compiled, config = member.run.compiled, member.run.config
    assert compiled is not None and config is not None  # (a run with a spec)
    seed, _ = split_seed(member.run, config)
    dataset = load_dataset(compiled, config, seed)
    scale = pipeline_settings(compiled, config, dataset).rescale
    if scale != test.settings.rescale:
        raise UsageError(
            f"expected every model of the ensemble to take pixels scaled as {target.name}'s are "
            f"(× {test.settings.rescale}); {member.label} was trained on pixels × {scale}",
            "ensemble models trained with the same data.rescale (and input layers)",
        )
    if not checks_split:
        return
    shared = seen_images(test.x, (dataset.x_train, dataset.x_val)).total
    if shared:
        raise UsageError(
            f"{shared:,} of {target.name}'s {len(test.x):,} test images are among the training or "
            f"validation images of {member.label}: the ensemble would be scored on images one of "
            "its models learnt",
            "ensemble runs trained on the same split of the data (the same data and training.seed), "
            "or on a source with a fixed test set",
        )


def describe(target: Run, members: Sequence[Member]) -> str:
    """``the 3 models RUN, A and B``: who the ensemble is (its run folders or model files)."""
    names = [printable(str(target.run_dir or target.model_path)), *(member.label for member in members)]
    return f"the {len(names)} models " + ", ".join(names[:-1]) + f" and {names[-1]}"
