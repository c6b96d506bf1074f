"""``cnnspec runs`` and ``cnnspec runs compare`` (reporting/runs.py) on run folders the tests
write themselves: the files a run leaves (lock.json, metrics.json, history.json, resolved.yaml)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnnspec.cli.app import app


def flat(text: str) -> str:
    """Output with Rich's line wrapping undone."""
    return " ".join(text.split())


def make_run(folder: Path, *, lr: float, accuracy: float | None, created: str, epochs: int = 3) -> Path:
    folder.mkdir(parents=True)
    (folder / "lock.json").write_text(
        json.dumps({"name": "digits", "created": created, "spec_hash": f"{hash(lr):x}0" * 8})
    )
    (folder / "resolved.yaml").write_text(
        f"name: digits\ntraining:\n  epochs: {epochs}\n  optimizer:\n    adam: {{learning_rate: {lr}}}\n"
    )
    (folder / "history.json").write_text(
        json.dumps(
            {
                "epoch": list(range(1, epochs + 1)),
                "loss": [1.0 / e for e in range(1, epochs + 1)],
                "val_loss": [1.2 / e for e in range(1, epochs + 1)],
                "accuracy": [0.5 + 0.1 * e for e in range(epochs)],
                "val_accuracy": [0.4 + 0.1 * e for e in range(epochs)],
            }
        )
    )
    if accuracy is not None:
        metrics = {
            "test_accuracy": accuracy,
            "test_loss": 1 - accuracy,
            "epochs_run": epochs,
            "epochs_planned": epochs,
        }
        (folder / "metrics.json").write_text(
            json.dumps({**metrics, "train_seconds": 12.5, "stopped_early": False})
        )
    return folder


@pytest.fixture
def run_tree(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    make_run(root / "b-run", lr=0.01, accuracy=0.95, created="2026-01-02T10:00:00+0000")
    make_run(root / "a-run", lr=0.001, accuracy=0.9, created="2026-01-01T10:00:00+0000")
    make_run(root / "search" / "trial-000", lr=0.003, accuracy=None, created="2026-01-03T10:00:00+0000")
    (root / "notes").mkdir()  # not a run: no lock.json
    return root


def test_runs_lists_run_folders_oldest_first_as_json(runner, run_tree):
    result = runner.invoke(app, ["runs", str(run_tree), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["run"] for r in rows] == ["a-run", "b-run", "search/trial-000"]
    assert [r["test_accuracy"] for r in rows] == [0.9, 0.95, None]
    assert [r["finished"] for r in rows] == [True, True, False]
    assert rows[0]["epochs"] == 3 and rows[0]["seconds"] == 12.5 and len(rows[0]["spec_hash"]) == 12


def test_runs_table(runner, run_tree):
    result = runner.invoke(app, ["runs", str(run_tree)])
    assert result.exit_code == 0, result.output
    assert "3 run(s)" in flat(result.output)
    assert (
        "0.9500" in flat(result.output)
        and "unfinished" in flat(result.output)
        and "search/trial-000" in flat(result.output)
    )


def test_runs_of_a_missing_folder_is_a_usage_error(runner, tmp_path):
    result = runner.invoke(app, ["runs", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "is not a folder" in flat(result.output)


def test_compare_shows_the_spec_diff_metric_differences_and_writes_the_curves(runner, run_tree, tmp_path):
    png = tmp_path / "curves.png"
    a, b = run_tree / "a-run", run_tree / "b-run"
    result = runner.invoke(app, ["runs", "compare", str(a), str(b), "--png", str(png), "--format", "json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert "-    adam: {learning_rate: 0.001}" in found["spec_diff"]
    assert "+    adam: {learning_rate: 0.01}" in found["spec_diff"]
    by_name = {row["metric"]: row for row in found["metrics"]}
    assert by_name["test_accuracy"]["difference"] == pytest.approx(0.05)
    assert by_name["epochs_run"]["difference"] == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    text = runner.invoke(app, ["runs", "compare", str(a), str(b), "--png", str(png)])
    assert text.exit_code == 0
    assert "+0.0500" in flat(text.output) and "learning_rate: 0.01" in flat(text.output)


def test_compare_of_the_same_spec_says_so(runner, run_tree, tmp_path):
    a = run_tree / "a-run"
    result = runner.invoke(app, ["runs", "compare", str(a), str(a), "--png", str(tmp_path / "c.png")])
    assert result.exit_code == 0
    assert "resolved specs: the same" in flat(result.output)


@pytest.mark.parametrize(
    "args",
    [["compare", "x"], ["compare", "a", "b", "c"], ["one", "two"]],
    ids=["one-run", "three-runs", "two-folders"],
)
def test_bad_runs_arguments_are_usage_errors(runner, args):
    result = runner.invoke(app, ["runs", *args])
    assert result.exit_code == 2
    assert "expected" in flat(result.output)


def test_compare_needs_run_folders(runner, run_tree, tmp_path):
    result = runner.invoke(app, ["runs", "compare", str(run_tree / "a-run"), str(run_tree / "notes")])
    assert result.exit_code == 2
    assert "is not one" in flat(result.output)
