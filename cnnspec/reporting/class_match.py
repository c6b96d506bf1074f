"""The names of ``--data``'s classes, labels, values and mask classes matched to the run's by
name (:func:`match_names`, Unicode NFC as training compares them): a source of some or all of
the run's classes in another order is renumbered to the run's, with a note, and names that are
no permutation of the run's are refused naming both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnspec.analysis.classes import name_key
from cnnspec.errors import UsageError
from cnnspec.reporting.run import Run

if TYPE_CHECKING:
    from cnnspec.analysis.settings_types import TrainConfig


#: How to evaluate on other data than data whose classes fit the model (``--data`` refusals).
OTHER_DATA_HINT = (
    "pass --data a source with the model's classes (named as the run names them, or labels "
    "without names), leave --data out for the run's own test split, or pass --spec with a spec "
    "that describes the model's data"
)


def _listed(names: list[str]) -> str:
    """``3 ('a', 'b', 'c')``: a count of class names and the first of them."""
    from cnnspec.analysis.datafit import name_list

    return f"{len(names)} {name_list(names)}" if names else "0"


def check_source_classes(names: list[str], recorded: list[str], config: TrainConfig) -> None:
    """The classes of a ``--data`` source (``names``) can be the model's: no more than its output
    units tell apart (2 for a binary one), and, where the source names them and the run
    recorded its own (``recorded``), some or all of the run's names, in any order
    (:func:`classes_by_name` puts them in the run's). Numbered names (``0``,
    ``1`` …) are a source's labels without names; a streamed folder's classes are matched to
    the run's by name (:func:`remap_folder_labels`). A :class:`UsageError` naming both sets otherwise: the
    report would show the source's classes under the model's names."""
    limit = 2 if config.binary else config.output_units
    kind = config.data.kind
    theirs = f"the run's classes are {_listed(recorded)}" if recorded else "the model's classes are not named"
    if limit and len(names) > limit:
        raise UsageError(
            f"expected --data with at most {limit} classes (the model's output units; {theirs}); "
            f"the {kind} data has {_listed(names)}",
            OTHER_DATA_HINT,
        )
    # (compared by name_key, Unicode NFC: a test folder macOS wrote decomposed is the same class)
    unknown = match_names(names, recorded).unknown if _by_name(names, recorded, config) else []
    if unknown:
        raise UsageError(
            f"expected --data classes named as the run's, in any order: {_listed(recorded)}; "
            f"the {kind} data has {_listed(names)} ({', '.join(map(repr, unknown[:10]))} not the run's)",
            OTHER_DATA_HINT,
        )


def _by_name(names: list[str], recorded: list[str], config: TrainConfig) -> bool:
    """Whether a single classifier's ``--data`` names (an npz's ``class_names``) are matched to
    the run's by name (:func:`classes_by_name`): both named, and not a streamed folder (matched
    by :func:`remap_folder_labels` before)."""
    return bool(recorded) and not config.data.streamed and not _numbered(names) and bool(names)


def classes_by_name(
    y: Any, names: list[str], recorded: list[str], config: TrainConfig, notes: list[str]
) -> tuple[Any, list[str]]:
    """A single classifier's ``--data`` labels whose names (checked by
    :func:`check_source_classes`: some or all of the run's) come in another order than the run's,
    renumbered to the run's classes, with a note: read by position, a permuted npz was refused
    while a multi-label one was read by name (:func:`match_outputs`)."""
    if not _by_name(names, recorded, config):
        return y, names
    match = match_names(names, recorded)
    if match.table == list(range(len(match.table))):
        return y, names
    notes.append(_reordered_note("classes", names, recorded))
    return _renumbered(y, match), list(recorded)


def _renumbered(values: Any, match: NameMatch) -> np.ndarray:
    """Class indices or mask values of ``--data`` (the data's j-th name) as the run's indices
    (``match.table[j]``), in their own dtype."""
    return np.asarray(match.table, dtype=np.asarray(values).dtype)[np.asarray(values)]


def _reordered_note(what: str, names: Sequence[str], recorded: Sequence[str]) -> str:
    """The note that ``--data``'s names (``what``: classes, labels …) were put in the run's order."""
    return (
        f"--data names its {what} in another order than the run ({_listed(list(names))}; the run's: "
        f"{_listed(list(recorded))}): they are matched to the run's by name"
    )


@dataclass(frozen=True)
class NameMatch:
    """How the names of ``--data`` (a class folder's, an npz's ``class_names``) match the
    run's, compared by :func:`~cnnspec.analysis.classes.name_key` (Unicode NFC, as training
    compares them: the folder ``ému`` macOS wrote decomposed is the run's ``ému``)."""

    #: for each of the data's names, the run's index of it (-1: the run has no such name)
    table: list[int]
    #: the data's names the run lacks, and the run's names the data lacks, in their order
    unknown: list[str]
    missing: list[str]

    @property
    def same_order(self) -> bool:
        """Every name the run's, at the run's index: nothing to reorder."""
        return not self.unknown and not self.missing and self.table == list(range(len(self.table)))


def match_names(names: Sequence[str], run_names: Sequence[str]) -> NameMatch:
    """The one matching of ``--data``'s names to the run's, by name, for every task: class
    folders (:func:`remap_folder_labels`) and npz names of labels, values, mask classes and a multi-output
    model's classes (:func:`match_outputs`)."""
    keys = [name_key(n) for n in run_names]
    theirs = {name_key(n) for n in names}
    return NameMatch(
        table=[keys.index(name_key(n)) if name_key(n) in keys else -1 for n in names],
        unknown=[str(n) for n in names if name_key(n) not in keys],
        missing=[str(n) for n in run_names if name_key(n) not in theirs],
    )


def remap_folder_labels(
    y: np.ndarray, names: list[str], run_names: list[str]
) -> tuple[np.ndarray, list[str]]:
    """Labels of a folder evaluated by a run's model: class folders mapped by name
    (:func:`match_names`; a folder of some of the run's classes is scored in the run's order),
    named as the run names them."""
    match = match_names(names, run_names)
    if match.same_order and len(names) == len(run_names):
        return y, list(run_names)
    if match.unknown:
        raise UsageError(
            f"expected class folders named like the run's classes ({', '.join(run_names[:20])}); "
            f"received {', '.join(match.unknown[:10])}",
            OTHER_DATA_HINT,
        )
    return np.array(match.table, dtype="int64")[y], list(run_names)


def _numbered(names: Sequence[str]) -> bool:
    """``0``, ``1`` …: the names a source without names is given (its values are positions)."""
    return list(names) == [str(i) for i in range(len(names))]


#: What an output's names name, by the kind of its target (for messages).
_NAMED = {"class": "classes", "multilabel": "labels", "regression": "values", "mask": "mask classes"}


def match_outputs(
    run: Run, dataset: Any, config: TrainConfig, y: Any, names: list[str], notes: list[str]
) -> tuple[Any, list[str]]:
    """``--data``'s targets of every output whose names (an npz's ``class_names``, or
    ``class_names_<output>``) are the run's in another order, reordered to the run's
    (:func:`match_names`): label and value columns, mask values, class indices; a note says so.
    The report reads them by position under the run's names: read as they come, a permuted
    file was scored wrongly, unsaid. Names that are no permutation of the run's (some missing,
    others extra) are refused naming both. Unnamed data (numbered names) and a run that
    recorded no names are read by position, as before. ``y``: the split's targets (a dict by
    output for a multi-output model, whose ``dataset.target_names`` are renamed in place);
    ``names``: a single output's names."""
    several = isinstance(dataset.target, dict)
    renamed = dict(dataset.target_names or {})
    y = dict(y) if several else y
    for out in config.tasks:
        kind = dataset.target.get(out.name) if several else dataset.target
        data_names = list(renamed.get(out.name, [])) if several else list(names)
        recorded = run.output_names(out.name)
        if kind is None or not recorded or not data_names or _numbered(data_names) or _numbered(recorded):
            continue
        match = match_names(data_names, recorded)
        if match.same_order and len(data_names) == len(recorded):
            continue
        what = _NAMED.get(str(kind), "names")
        whose = f" of the output {out.name}" if several else ""
        if match.unknown or match.missing:
            problems = [
                f"{', '.join(map(repr, match.missing[:10]))} missing" if match.missing else "",
                f"{', '.join(map(repr, match.unknown[:10]))} not the run's" if match.unknown else "",
            ]
            raise UsageError(
                f"expected --data {what}{whose} named as the run's, in any order: {_listed(recorded)}; "
                f"the {config.data.kind} data has {_listed(data_names)} "
                f"({'; '.join(p for p in problems if p)})",
                "pass --data whose names are the run's (they are matched by name), or leave --data out "
                "for the run's own test split",
            )
        values = y[out.name] if several else y
        if kind in ("multilabel", "regression"):  # columns: the run's i-th is the data's order[i]
            order = [match.table.index(i) for i in range(len(recorded))]
            values = np.asarray(values)[:, order]
        else:  # class indices or mask values: the data's j-th name is the run's table[j]
            values = _renumbered(values, match)
        notes.append(_reordered_note(what + whose, data_names, recorded))
        if several:
            y[out.name] = values
            renamed[out.name] = list(recorded)
        else:
            y, names = values, list(recorded)
    if several:
        dataset.target_names = renamed
    return y, names
