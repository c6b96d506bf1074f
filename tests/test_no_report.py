"""`train --no-report` and `search --no-report`: runs that end without their report.html, and
what the commands that read run folders then say of them."""

from __future__ import annotations

import json
import shlex

import pytest

from cnnspec.cli.app import app
from tests.conftest import TINY_DIGITS_MODEL

pytestmark = pytest.mark.slow

SPEC = "cnnspec: 1\nname: pageless\n" + TINY_DIGITS_MODEL + "training: {epochs: 1, batch_size: 32, seed: 3}\n"


def flat(text: str) -> str:
    return " ".join(text.split())


def test_a_run_without_its_page_is_finished_and_resume_writes_it_later(runner, write_spec, tmp_path):
    spec = write_spec(SPEC)
    run = tmp_path / "a run"  # (a space: the command the summary names is quoted to be pasted)
    result = runner.invoke(app, ["train", str(spec), "--no-report", "-o", str(run)], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    later = shlex.join(["cnnspec", "report", str(run)])
    assert f"│ page │ not written (--no-report): {later} │" in flat(result.output)
    assert not (run / "report.html").exists() and not (run / "state").exists()
    for name in ("model.keras", "metrics.json", "history.json", "history.png", "confusion_matrix.png"):
        assert (run / name).is_file(), name
    assert json.loads((run / "metrics.json").read_text())["epochs_run"] == 1
    # nothing left that --no-report would write: a whole run, and the hint writes the page (not "again")
    result = runner.invoke(app, ["train", str(spec), "--resume", str(run), "--no-report"])
    assert result.exit_code == 2, result.output
    text = flat(result.output)
    assert f"the run in {run} has finished; there is nothing to resume" in text
    assert f"`{later}` writes its report.html" in text and "again" not in text
    assert not (run / "report.html").exists()
    # without it, --resume writes the page the run ended without, training nothing again
    kept = (run / "model.keras").read_bytes(), (run / "metrics.json").read_bytes()
    result = runner.invoke(app, ["train", str(spec), "--resume", str(run)])
    assert result.exit_code == 0, result.output
    text = flat(result.output)
    assert f"the run in {run} had ended without its report.html; nothing was trained again" in text
    assert f"finished {run}: wrote its report.html" in text
    assert (run / "report.html").is_file()
    assert ((run / "model.keras").read_bytes(), (run / "metrics.json").read_bytes()) == kept
    result = runner.invoke(app, ["train", str(spec), "--resume", str(run)])
    assert result.exit_code == 2 and "writes its report.html again" in flat(result.output), result.output


def test_cnnspec_report_writes_the_page_of_a_run_trained_without_it(runner, write_spec, tmp_path):
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(write_spec(SPEC)), "--no-report", "-q", "-o", str(run)])
    assert result.exit_code == 0 and not (run / "report.html").exists(), result.output
    assert "not written" not in result.output  # (-q: the result line alone)
    result = runner.invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    page = (run / "report.html").read_text(encoding="utf-8")
    assert "pageless" in page and "metrics.json sha256" in page  # the page of the finished results


SEARCH = (
    SPEC.replace("name: pageless", "name: pageless_search")
    + "search:\n  trials: 2\n  seed: 3\n  pruner: none\n"
    + "  space:\n    training.optimizer.adam.learning_rate: {float: [0.001, 0.1], log: true}\n"
).replace("seed: 3}", "seed: 3, optimizer: {adam: {learning_rate: 0.01}}}")


def test_a_search_without_pages_keeps_every_trials_results_and_links_no_page(runner, write_spec, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["search", str(write_spec(SEARCH)), "--no-report", "-q", "-o", str(out)])
    assert result.exit_code == 0, result.output
    trials = sorted(out.glob("trial-*"))
    assert [t.name for t in trials] == ["trial-000", "trial-001"]
    for trial in trials:
        assert (trial / "metrics.json").is_file() and (trial / "model.keras").is_file()
        assert not (trial / "report.html").exists() and not (trial / "state").exists()
    rows = json.loads((out / "search.json").read_text())["trials"]
    assert [row["state"] for row in rows] == ["COMPLETE", "COMPLETE"]
    assert [row["report"] for row in rows] == [None, None]
    assert "trial-000/report.html" not in (out / "search.html").read_text(encoding="utf-8")
    # a page written later is linked by the next summary
    assert runner.invoke(app, ["report", str(trials[0])]).exit_code == 0
    result = runner.invoke(app, ["search", str(write_spec(SEARCH)), "--no-report", "-q", "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "search.json").read_text())["trials"]
    assert [row["report"] for row in rows] == ["trial-000/report.html", None]


def test_both_commands_document_the_option(runner):
    for command in ("train", "search"):
        result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
        assert "--no-report" in result.output and "cnnspec report RUN" in flat(result.output), command
