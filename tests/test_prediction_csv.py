"""`cnnspec predict --format csv` (cnnspec/reporting/prediction_csv.py): one row per input,
every task's answer in columns, numbers that read back exactly, and no cell a spreadsheet would
run as a formula. The command itself: tests/test_predict.py."""

from __future__ import annotations

import csv
import io

from cnnspec.reporting.prediction_csv import predictions_csv


def read(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_a_classifiers_top_k_in_rank_order():
    results = [
        {"input": "a.png", "notes": [], "top": [{"class": "cat", "index": 1, "probability": 0.7},
                                                {"class": "dog", "index": 0, "probability": 0.2}]},
        {"input": "b, c.png", "notes": ["resized 9×9 → 8×8", "RGBA → RGB"],
         "top": [{"class": "dog", "index": 0, "probability": 0.1 + 0.2},
                 {"class": "cat", "index": 1, "probability": 0.5}]},
    ]  # fmt: skip
    text = predictions_csv(results)
    assert text.splitlines()[0] == "input,class_1,probability_1,class_2,probability_2,notes"
    rows = read(text)
    assert rows[0] == {"input": "a.png", "class_1": "cat", "probability_1": "0.7", "class_2": "dog",
                       "probability_2": "0.2", "notes": ""}  # fmt: skip
    assert rows[1]["input"] == "b, c.png" and float(rows[1]["probability_1"]) == 0.1 + 0.2  # exactly
    assert rows[1]["notes"] == "resized 9×9 → 8×8; RGBA → RGB"


def test_each_task_of_a_model_with_several_outputs_has_its_columns():
    outputs = {
        "mask": {"task": "segmentation", "mask": "predictions/a_mask.png", "mask_size": [4, 4],
                 "pixel_share": {"sky": 0.75, "road": 0.25}},
        "tags": {"task": "multilabel", "labels": ["red", "round"], "threshold": 0.5,
                 "probabilities": {"red": 0.9, "round": 0.6, "big": 0.1}},
        "size": {"task": "regression", "values": [1.5, -2.0], "names": ["width", "height"]},
        "kind": {"task": "classification", "top": [{"class": "ball", "index": 0, "probability": 1.0}]},
    }  # fmt: skip
    rows = read(predictions_csv([{"input": "a.png", "notes": [], "outputs": outputs}]))
    assert list(rows[0]) == [
        "input", "mask.mask", "mask.share.sky", "mask.share.road", "tags.labels", "tags.probability.red",
        "tags.probability.round", "tags.probability.big", "size.value.width", "size.value.height",
        "kind.class_1", "kind.probability_1", "notes",
    ]  # fmt: skip
    assert rows[0]["tags.labels"] == "red;round" and rows[0]["size.value.height"] == "-2.0"
    # one output: no prefix
    one = read(predictions_csv([{"input": "b.png", "notes": [], "outputs": {"size": outputs["size"]}}]))
    assert list(one[0]) == ["input", "value.width", "value.height", "notes"]


def test_no_cell_is_a_formula():
    results = [{"input": "=HYPERLINK(\"http://x\").png", "notes": ["@SUM(A1)"],
                "top": [{"class": "+cmd", "index": 0, "probability": 1.0}]}]  # fmt: skip
    (row,) = read(predictions_csv(results))
    assert row["input"] == '\'=HYPERLINK("http://x").png' and row["class_1"] == "'+cmd"
    assert row["notes"] == "'@SUM(A1)"
    # a negative number stays a number; a header made of an output's name is escaped too
    value = {"task": "regression", "values": [-1.25], "names": ["x"]}
    text = predictions_csv([{"input": "-3", "notes": [], "outputs": {"=o": value, "p": value}}])
    assert text.splitlines() == ["input,'=o.value.x,p.value.x,notes", "-3,-1.25,-1.25,"]


def test_equal_probabilities_rank_the_lower_index_first_as_argmax_does():
    # predict named the highest index of a tie while evaluate's confusion matrix (argmax) counted
    # the lowest: an int8 export's probabilities come in steps of 1/256, so ties happen
    import numpy as np

    from cnnspec.reporting.task_predict import top_classes

    top = top_classes(np.array([0.25, 0.375, 0.375, 0.0]), ["a", "b", "c", "d"], 3)
    assert [t["class"] for t in top] == ["b", "c", "a"]
    assert top[0]["index"] == int(np.argmax([0.25, 0.375, 0.375, 0.0]))
