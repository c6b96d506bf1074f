"""The targets of an ``npz`` source for the model's tasks: which arrays are the targets of which
output, their kind (classes, labels, values, masks), and whether their counts and names fit the
outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnspec.analysis.datafit import mask_names_short
from cnnspec.analysis.settings_types import DataConfig, TrainConfig
from cnnspec.errors import SpecPath, did_you_mean
from cnnspec.training.data_arrays import Targets, _labels
from cnnspec.training.data_sources import _npz_array, _npz_names, _open_npz
from cnnspec.training.dataset import SOURCE, source_error

if TYPE_CHECKING:
    from cnnspec.analysis.compiled import CompiledSpec


def _infer_kind(y: np.ndarray) -> str:
    """A multi-output npz array's target kind, from its shape and dtype: (n, H, W) masks;
    integer (n,) or (n, 1) class indices; integer (n, K) of 0/1 multi-hot labels; floats:
    values."""
    if y.ndim >= 3:
        return "mask"
    integers = np.issubdtype(y.dtype, np.integer) or y.dtype == bool
    if integers and (y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1)):  # (n, 1): Keras' layout
        return "class"
    if y.ndim == 2 and y.shape[1] > 1 and integers and bool(np.all((y == 0) | (y == 1))):
        return "multilabel"
    return "regression"


def _npz_targets(
    path: Path, data: DataConfig, compiled: CompiledSpec, test_only: bool = False
) -> tuple[np.ndarray, Targets, np.ndarray, Targets, Any, dict[str, list[str]], dict[str, list[str]]] | None:
    """A multi-output npz (``y_train_<output>``, ``y_test_<output>`` for every output), or
    ``None`` when the file has the single-target layout. ``test_only`` (as :func:`_npz`): a file
    of ``x_test`` and ``y_test_<output>`` alone is read too, its test arrays standing for both."""
    outputs = list(compiled.ir.outputs)
    if len(outputs) < 2:
        return None
    where: SpecPath = (*SOURCE, "npz")
    with _open_npz(path, compiled, where) as archive:
        files = set(archive.files)
        if any(k.startswith("y_train_") for k in files):
            splits: tuple[str, ...] = ("train", "test")
        elif test_only and any(k.startswith("y_test_") for k in files):
            splits = ("test",)
        else:
            _refuse_one_target(files, outputs, path, compiled, test_only)
            return None
        wanted = [*[f"x_{s}" for s in splits], *[f"y_{s}_{o}" for o in outputs for s in splits]]
        missing = [k for k in wanted if k not in files]
        if missing:
            raise source_error(
                f"expected a target for every model output in {path.name}; missing {', '.join(missing)}",
                compiled,
                where,
                hint=f"store {' and '.join(f'y_{s}_<output>' for s in splits)} for each output id",
            )
        arrays = {k: _npz_array(archive, k, path, compiled, where) for k in wanted}
        flat = _npz_names(archive, path, compiled, where)
        own = {o: _npz_names(archive, path, compiled, where, f"class_names_{o}") for o in outputs}
        keys = {f"class_names_{o}" for o in outputs}
        stray = sorted(k for k in files if k.startswith("class_names_") and k not in keys)
        if stray:  # (a misspelt output: its names were left out without a word)
            raise source_error(
                f"expected class_names_<output> for outputs of the model; {path.name} has {stray[0]}, "
                f"and the model's outputs are {', '.join(outputs)}",
                compiled,
                where,
                hint=did_you_mean(stray[0], sorted(keys)) or "name it after an output id, or leave it out",
            )
    first = splits[0]  # (the test arrays stand for the training ones in a test-only file)
    y_train = {o: arrays[f"y_{first}_{o}"] for o in outputs}
    y_test = {o: arrays[f"y_test_{o}"] for o in outputs}
    kinds = {o: _infer_kind(y_train[o]) for o in outputs}
    # `class_names` names the classifiers' classes (a mask's, where no output is a classifier);
    # `class_names_<output>` one output's, whatever it is
    named = "class" if "class" in kinds.values() else "mask"
    names = {o: own[o] or (flat if kinds[o] == named else []) for o in outputs}
    return arrays[f"x_{first}"], y_train, arrays["x_test"], y_test, kinds, names, own


def _refuse_one_target(
    files: set[str], outputs: list[str], path: Path, compiled: CompiledSpec, test_only: bool
) -> None:
    """An npz of one target (``y_train``, ``y_test``: Keras' layout) for a model of several
    ``outputs``: a located error naming the arrays each output needs (its targets were checked
    as one output's, and refused as labels or masks of the wrong shape). A file with neither is
    left to :func:`_npz`, which names what is missing."""
    given = [key for key in ("y_train", "y_test") if key in files]
    if not given:
        return
    splits = ("test",) if test_only else ("train", "test")
    each = " and ".join(f"y_{split}_<output>" for split in splits)
    wanted = ", ".join(f"y_{split}_{output}" for output in outputs for split in splits)
    raise source_error(
        f"expected {each} arrays for each of the model's {len(outputs)} outputs ({', '.join(outputs)}); "
        f"{path.name} has {' and '.join(given)}, one target",
        compiled,
        (*SOURCE, "npz"),
        f"a model of several outputs takes a target per output: store {wanted}",
    )


def _npz_kind(y_train: np.ndarray, data: DataConfig, compiled: CompiledSpec) -> str:
    """What a single-target npz holds: as stated, masks for (n, H, W) arrays, else the task's
    (masks for a segmentation model too: other arrays are refused as masks of the wrong shape,
    not as class labels)."""
    from cnnspec.analysis.settings_data import default_target

    if isinstance(data.target, str):
        return data.target
    if np.ndim(y_train) >= 3:
        return "mask"
    return default_target(compiled)


def _check_targets(
    y: Targets,
    kind: Any,
    what: str,
    compiled: CompiledSpec,
    x: np.ndarray,
    names: Any,
    config: TrainConfig | None = None,
) -> Targets:
    """Class indices as before; other kinds through :func:`targets.check_target`. ``config``:
    the model a single target's class labels must fit (:func:`_labels`)."""
    from cnnspec.training.targets import check_target

    if isinstance(y, dict):  # each output's classes are checked against it by task_data
        # each named by its array, which says the output too ("in test" named neither)
        split = "test" if what == "test" else "train"
        return {
            k: _check_targets(v, kind[k], f"y_{split}_{k}", compiled, x, names.get(k)) for k, v in y.items()
        }
    if kind == "class":
        return _labels(y, compiled, what, config)
    mask_names = names if kind == "mask" and names else None
    return check_target(y, kind, what, compiled, SOURCE, image_shape=x.shape[1:3], names=mask_names)


def _check_npz_names(
    names: list[str],
    kind: str,
    y_train: np.ndarray,
    y_test: np.ndarray,
    path: Path,
    compiled: CompiledSpec,
    key: str = "class_names",
    config: TrainConfig | None = None,
    output: str | None = None,
) -> None:
    """An npz's ``class_names`` name every class (at least the largest index + 1), label or value
    (exactly one per column): a located error naming both counts otherwise, where they used to
    be replaced by numbers silently. Masks are checked against them by :func:`check_target`,
    and they against the classes of the segmentation output they are for (``config``'s output
    ``output``, or its only one): :func:`check_mask_names`."""
    if not names:
        return
    if kind == "mask":
        check_mask_names(names, config, output, f"{key} of {path.name}", compiled, (*SOURCE, "npz"), key)
        return
    if kind == "class":
        count = int(max(y_train.max(initial=-1), y_test.max(initial=-1))) + 1
        labels = f"labels 0–{count - 1}" if count > 1 else "label 0"
        fits, what = len(names) >= count, f"{count} classes ({labels})"
    else:
        count = int(y_train.shape[1])
        fits, what = len(names) == count, f"{count} {'labels' if kind == 'multilabel' else 'values'}"
    if fits:
        return
    shown = ", ".join(names[:5]) + (", …" if len(names) > 5 else "")
    raise source_error(
        f"expected a name for each of the {what} in {path.name}; its {key} has {len(names)} ({shown})",
        compiled,
        (*SOURCE, "npz"),
        "store one name per class (or label, or value column) in index order, or leave "
        f"{key} out to number them",
    )


def check_mask_names(
    names: list[str],
    config: TrainConfig | None,
    output: str | None,
    said: str,
    compiled: CompiledSpec,
    where: SpecPath,
    key: str,
) -> None:
    """Mask class names given (``said``: where, as the message says it) must name each class of
    the segmentation output the masks are for (``output``, or the model's only output): too few
    were replaced by numbers everywhere (reports, metrics.json, evaluate, predict) while the
    export's record kept them. A located error at ``where``, as a classifier's class names."""
    outs = [o for o in (config.tasks if config else ()) if output is None or o.name == output]
    if len(outs) != 1 or outs[0].task != "segmentation":
        return
    short = mask_names_short(outs[0].classes, names, said, key, output)
    if short is not None:
        raise source_error(short[0], compiled, where, short[1])


def _count(y: Targets) -> int:
    return len(next(iter(y.values()))) if isinstance(y, dict) else len(y)


def _check_output_counts(
    splits: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]], compiled: CompiledSpec
) -> None:
    """A multi-output npz's targets: as many rows as images for every output, each output's
    training then test targets in turn (an output after the first with fewer rows stopped the
    split with an IndexError)."""
    outputs = next(iter(splits.values()))[1]
    for output in outputs:
        for what, (x, y) in splits.items():
            if len(y[output]) != len(x):
                raise source_error(
                    f"expected as many {what} targets for output {output} as images ({len(x)}); "
                    f"received {len(y[output])}",
                    compiled,
                    (*SOURCE, "npz"),
                    hint=f"store one row of y_{'train' if what == 'training' else 'test'}_{output} per image "
                    f"of x_{'train' if what == 'training' else 'test'}, in the same order",
                )


def _names_for(kind: str, y: np.ndarray, names: list[str], *parts: np.ndarray) -> list[str]:
    """The names of a target: as given when they fit, else numbered."""
    from cnnspec.training.targets import default_names

    if kind == "class":
        n_classes = int(max(p.max(initial=0) for p in (y, *parts))) + 1
        return names if names and len(names) >= n_classes else [str(i) for i in range(n_classes)]
    if kind in ("multilabel", "regression"):
        return names if len(names) == y.shape[1] else default_names(kind, y)
    top = max(int(p.max(initial=0)) for p in (y, *parts)) + 1
    return names if names and len(names) >= top else [str(i) for i in range(top)]
