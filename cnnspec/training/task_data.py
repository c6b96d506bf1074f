"""Targets for multilabel, regression, segmentation and multi-output models: every output has
a target in the data, of the shape and type its task needs (located errors, nothing written).

The shapes per output (see :class:`~cnnspec.training.dataset.Dataset`): multilabel ``(N, K)``
0/1, regression ``(N, D)`` numbers (``(N,)`` for one value), segmentation ``(N, H, W)`` class
indices, classification ``(N,)`` class indices; a multi-output model takes a dict of these by
output name (an ``.npz`` stores them as ``y_train_NAME``/``y_test_NAME``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from cnnspec.analysis.datafit import KINDS_HINT, MSLE_HINT, kinds_message, source_loc
from cnnspec.analysis.settings_types import TrainConfig
from cnnspec.analysis.tasks import OutputTask
from cnnspec.errors import SpecError, format_path

if TYPE_CHECKING:
    from cnnspec.analysis.compiled import CompiledSpec

SOURCE = ("data", "source")


def _error(message: str, compiled: CompiledSpec, hint: str | None = None) -> SpecError:
    return SpecError.single(
        message, source_loc(compiled, SOURCE), format_path(SOURCE), code="data", hint=hint
    )


def target_kinds(config: TrainConfig) -> str | dict[str, str]:
    """The :attr:`Dataset.target` of data for ``config``'s outputs."""
    if len(config.tasks) == 1:
        return config.tasks[0].target
    return {out.name: out.target for out in config.tasks}


def check_targets(y: Any, n: int, compiled: CompiledSpec, config: TrainConfig, what: str) -> Any:
    """``y`` checked and converted for every output (an array for one output, else a dict)."""
    tasks = config.tasks
    if len(tasks) == 1:
        if isinstance(y, dict):
            if len(y) == 1:
                y = next(iter(y.values()))
            elif tasks[0].name in y:
                y = y[tasks[0].name]
            else:
                raise _error(
                    f"expected one target array for the model's one output; the {what} data has "
                    f"{', '.join(sorted(y))}",
                    compiled,
                )
        return _check_one(tasks[0], np.asarray(y), n, compiled, what, "")
    if not isinstance(y, dict):
        raise _error(
            f"expected a target per output ({', '.join(o.name for o in tasks)}); "
            f"the {what} data has one array",
            compiled,
            "store y_train_NAME and y_test_NAME for every output NAME in the .npz",
        )
    missing = [o.name for o in tasks if o.name not in y]
    if missing:
        raise _error(
            f"expected a {what} target for every output; missing {', '.join(missing)}",
            compiled,
            f"the data has targets for: {', '.join(sorted(y)) or 'nothing'}; "
            "store y_train_NAME / y_test_NAME",
        )
    return {
        o.name: _check_one(o, np.asarray(y[o.name]), n, compiled, what, f" for output {o.name}")
        for o in tasks
    }


def _check_one(
    out: OutputTask, y: np.ndarray, n: int, compiled: CompiledSpec, what: str, where: str
) -> np.ndarray:
    if len(y) != n:
        raise _error(f"expected as many {what} targets{where} as images ({n}); received {len(y)}", compiled)
    numeric = np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating) or y.dtype == bool
    if not numeric:
        raise _error(
            f"expected numeric {what} targets{where} ({out.task}); received dtype {y.dtype}", compiled
        )
    if y.size and np.issubdtype(y.dtype, np.floating) and not np.all(np.isfinite(y)):
        raise _error(f"expected finite {what} targets{where}; they contain NaN or infinity", compiled)
    if out.task == "regression":
        width = 1 if y.ndim == 1 else int(np.prod(y.shape[1:]))
        if width != out.units:
            raise _error(
                f"expected {out.units} regression value(s) per image{where}; the {what} targets have shape "
                f"{list(y.shape)}",
                compiled,
                f"the output {out.name} has {out.units} unit(s)",
            )
        _check_msle(out, y, compiled, what, where)
        # the known width: an empty split (validation_split: 0) cannot infer a -1 axis
        return y.reshape(len(y), width).astype("float32") if y.ndim > 1 else y.astype("float32")
    if out.task == "multilabel":
        if y.ndim != 2 or y.shape[1] != out.units:
            raise _error(
                f"expected multi-hot {what} targets{where} of shape (n, {out.units}); "
                f"received {list(y.shape)}",
                compiled,
                "one row per image, one 0/1 column per label",
            )
        if y.size and not np.all((y == 0) | (y == 1)):
            raise _error(f"expected 0/1 multilabel {what} targets{where}; found other values", compiled)
        return y.astype("float32")
    if y.size and not np.all(np.mod(y, 1) == 0):
        raise _error(f"expected integer class indices as {what} targets{where}; received fractions", compiled)
    if y.size and (y.min() < 0 or y.max() >= out.classes):
        raise _error(
            f"expected class indices 0–{out.classes - 1} in the {what} targets{where}; found "
            f"{int(y.min() if y.min() < 0 else y.max())}",
            compiled,
            f"the output {out.name} has {out.classes} classes",
        )
    if out.task == "segmentation":
        if y.ndim == 4 and y.shape[-1] == 1:
            y = y[..., 0]
        size = tuple(out.shape[:2])
        if y.ndim != 3 or tuple(y.shape[1:]) != size:
            raise _error(
                f"expected {what} masks{where} of shape (n, {size[0]}, {size[1]}); received {list(y.shape)}",
                compiled,
                "a mask has the image's height and width, one class index per pixel",
            )
        return y.astype("int32")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise _error(
            f"expected class indices of shape (n,) as {what} targets{where}; received {list(y.shape)}",
            compiled,
        )
    return y.astype("int64")


def _check_msle(out: OutputTask, y: np.ndarray, compiled: CompiledSpec, what: str, where: str) -> None:
    """A regression output trained with msle must have no negative target: Keras clamps each
    target (and prediction) below its epsilon to it before the log, so negative values would
    silently train as 0."""
    if out.loss.name != "msle" or not y.size:
        return
    least = float(np.min(y))
    if least < 0:
        raise _error(
            f"expected {what} targets{where} ≥ 0 for the msle loss; found {least:.6g}", compiled, MSLE_HINT
        )


def check_kinds(dataset: Any, compiled: CompiledSpec, config: TrainConfig) -> None:
    """The target kinds of a loaded dataset match every output's task (a located error at
    the data source otherwise: the data is of another task, whatever the model's shape)."""
    kinds = dataset.target if isinstance(dataset.target, dict) else None
    for out in config.tasks:
        kind = kinds.get(out.name) if kinds is not None else dataset.target
        if kinds is not None and kind is None:
            continue  # a missing target is reported by check_targets, by name
        if kind != out.target:
            other = (
                _not_multi_hot(dataset, out.name)
                if (out.target, kind) == ("multilabel", "regression")
                else None
            )
            if other is not None:  # (an npz's multi-hot rows with a typo: not another task's data)
                raise _error(
                    f"expected 0/1 multi-label targets for the multilabel output {out.name}; {other}",
                    compiled,
                    "a multi-hot row holds 1 for each label of its image and 0 for the others",
                )
            raise _error(kinds_message(out.target, out.task, out.name, str(kind)), compiled, KINDS_HINT)


def _not_multi_hot(dataset: Any, name: str) -> str | None:
    """Of an output's numeric (n, K) targets that are not all 0 or 1 (read as values, not
    labels): which array of the file holds which other value; ``None`` for any other targets."""
    for split, array in (("train", dataset.y_train), ("val", dataset.y_val), ("test", dataset.y_test)):
        y = np.asarray(array.get(name) if isinstance(array, dict) else None)
        if y.ndim != 2 or not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)):
            return None
        wrong = y[(y != 0) & (y != 1)]
        if wrong.size:  # (the validation split is cut from the training array)
            return f"y_{'test' if split == 'test' else 'train'}_{name} holds {wrong.flat[0]:g}"
    return None


def check_dataset(dataset: Any, compiled: CompiledSpec, config: TrainConfig) -> None:
    """A loaded dataset against every output's task: the target kinds match the tasks
    (:func:`check_kinds`), and each split's targets are checked and converted in place."""
    check_kinds(dataset, compiled, config)
    for split in ("train", "val", "test"):
        x, y = getattr(dataset, f"x_{split}"), getattr(dataset, f"y_{split}")
        what = {"train": "training", "val": "validation", "test": "test"}[split]
        setattr(dataset, f"y_{split}", check_targets(y, len(x), compiled, config, what))
