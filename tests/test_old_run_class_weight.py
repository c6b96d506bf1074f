"""A run trained before cnnspec refused some ``training.class_weight`` keys (a class
``data.classes`` left out, two keys weighing one class) stays usable: the weights only matter
to training, so the commands that read a finished run compile its resolved.yaml without that
check (:attr:`cnnspec.analysis.compiled.CompiledSpec.finished_run`). validate and ``train
--resume`` still refuse the spec. The TF-free test writes the run folder by hand; the slow one
edits a copy of the shared trained run (tests/test_report_support.py), training nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.test_damaged_runs import SPEC, make_run
from tests.test_report_support import flat, invoke, trained_run
from tests.test_runs import write_resolved

#: digits with data.classes [0, 1, 2]: the key 5 names a class the run left out (refused since)
OLD_DIGITS = SPEC.replace("{source: digits}", "{source: digits, classes: [0, 1, 2]}") + (
    "training:\n  class_weight: {5: 2.0}\n"
)


def test_a_finished_run_whose_class_weight_key_is_refused_now_is_still_read(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    write_resolved(run, OLD_DIGITS)
    result = invoke("visualize", run, "history", "--out", tmp_path / "history.png")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "history.png").is_file()
    # validate still refuses the spec, as train and --resume do
    (tmp_path / "spec.yaml").write_text(OLD_DIGITS, encoding="utf-8")
    refused = invoke("validate", tmp_path / "spec.yaml")
    assert refused.exit_code == 1, refused.output
    assert (
        f"{tmp_path / 'spec.yaml'}:9:18: error: training.class_weight.5: expected a class that "
        "data.classes keeps; received '5': class '5' is not among data.classes [0, 1, 2]"
    ) in flat(refused)
    resumed = invoke("train", tmp_path / "spec.yaml", "--resume", run)
    assert resumed.exit_code == 1, resumed.output
    assert (
        f"note: the run in {run} was started with this key by an older cnnspec; a resumed run keeps its "
        f"spec, so fix the key and start a new run (cnnspec train {tmp_path / 'spec.yaml'}): the run's "
        "model is still read by evaluate, predict, report …"
    ) in flat(resumed)


@pytest.mark.slow
def test_evaluate_reads_an_old_run_whose_two_class_weight_keys_weigh_one_class(
    tmp_path_factory, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run(tmp_path_factory), run)
    resolved = (run / "resolved.yaml").read_text(encoding="utf-8")
    assert "\ntraining:\n" in resolved
    weighed = "\ntraining:\n  class_weight: {red: 1.0, '0': 2.0}\n"  # '0' is red too
    write_resolved(run, resolved.replace("\ntraining:\n", weighed))
    result = invoke("evaluate", run)
    assert result.exit_code == 0, result.output
    assert (
        "note: training.class_weight.0: expected each class once in training.class_weight; received "
        "'0', the same class ('red') as 'red'; this run was trained before cnnspec refused such a key, "
        "so its class weights may not be the ones the spec reads as (fix the key to train it again: "
        "validate, train and --resume refuse it)"
    ) in flat(result)
    assert (run / "evaluation.json").is_file()
