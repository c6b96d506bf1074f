"""``cnnspec predict --format csv``: one row per input, for spreadsheets and pandas.

The columns are those of the JSON's ``predictions``, flattened: ``input``; a classifier's top k
as ``class_1, probability_1, …, class_k, probability_k`` (``class_1`` is the prediction); a
task model's answer per output (``OUTPUT.`` before each column when the model has several):
a segmentation's ``mask`` file and ``share.CLASS`` of its pixels, a multi-label's ``labels``
(``;`` between them) and ``probability.LABEL``, a regression's ``value.NAME``; ``notes`` last.
Numbers are written as Python's ``repr`` writes them (they read back exactly).

Text that a spreadsheet would run as a formula (a cell that starts with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return, and is no number: a file or class name the user did not
choose may be one) is written with a ``'`` before it, as OWASP's CSV-injection advice says.
"""

from __future__ import annotations

import csv
import io
from typing import Any

#: The first characters that make a spreadsheet read a cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _top(top: list[dict[str, Any]], prefix: str) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for rank, entry in enumerate(top, start=1):
        row[f"{prefix}class_{rank}"] = entry["class"]
        row[f"{prefix}probability_{rank}"] = entry["probability"]
    return row


def _task(entry: dict[str, Any], prefix: str) -> dict[str, Any]:
    """One output's answer (:func:`cnnspec.reporting.task_predict.predict_file_tasks`)."""
    task = entry["task"]
    if task == "segmentation":
        shares = {f"{prefix}share.{name}": share for name, share in entry["pixel_share"].items()}
        return {f"{prefix}mask": entry["mask"], **shares}
    if task == "multilabel":
        chances = {f"{prefix}probability.{name}": p for name, p in entry["probabilities"].items()}
        return {f"{prefix}labels": ";".join(entry["labels"]), **chances}
    if task == "regression":
        names = entry.get("names") or [str(i) for i in range(len(entry["values"]))]
        return {f"{prefix}value.{name}": value for name, value in zip(names, entry["values"], strict=True)}
    return _top(entry["top"], prefix)


def flat_row(result: dict[str, Any]) -> dict[str, Any]:
    """One prediction (an entry of the JSON's ``predictions``) as a flat row."""
    row: dict[str, Any] = {"input": result["input"]}
    if "outputs" in result:
        several = len(result["outputs"]) > 1
        for name, entry in result["outputs"].items():
            row.update(_task(entry, f"{name}." if several else ""))
    else:
        row.update(_top(result["top"], ""))
    row["notes"] = "; ".join(result.get("notes", []))
    return row


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    from cnnspec.training.targets import is_number  # (the values tables' own reading of a number)

    text = str(value)
    if text.startswith(FORMULA_STARTS) and not is_number(text):
        return "'" + text
    return text


def predictions_csv(results: list[dict[str, Any]]) -> str:
    """The predictions as CSV text: a header, then a row per input in their order. The columns
    are the union of the rows' in order of appearance (a multi-label output's probabilities are
    the same for every row; a cell a row lacks is empty)."""
    rows = [flat_row(result) for result in results]
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(k for k in row if k != "notes"))
    header = [*columns, "notes"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([_cell(name) for name in header])
    for row in rows:
        writer.writerow([_cell(row.get(name)) for name in header])
    return buffer.getvalue()
