"""``cnnspec runs`` and ``cnnspec runs compare`` (reporting/runs.py) on run folders the tests
write themselves: the files a run leaves (lock.json, metrics.json, history.json, resolved.yaml)."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest

from cnnspec.cli.app import app
from tests.test_damaged_runs import stand_in_model


def flat(text: str) -> str:
    """Output with Rich's line wrapping undone."""
    return " ".join(text.split())


def resolved_hash(resolved: str) -> str:
    """lock.json's ``resolved_sha256`` of a resolved.yaml's text (training/rundir.py)."""
    return hashlib.sha256(resolved.encode("utf-8")).hexdigest()


def write_resolved(run: Path, resolved: str) -> None:
    """Write ``resolved`` as the run's resolved.yaml, recorded in its lock.json as training does
    (an edit of one without the other is a damaged run)."""
    (run / "resolved.yaml").write_text(resolved, encoding="utf-8")
    lock = json.loads((run / "lock.json").read_text(encoding="utf-8"))
    (run / "lock.json").write_text(json.dumps({**lock, "resolved_sha256": resolved_hash(resolved)}))


def make_run(folder: Path, *, lr: float, accuracy: float | None, created: str, epochs: int = 3) -> Path:
    folder.mkdir(parents=True)
    (folder / "lock.json").write_text(
        json.dumps({"name": "digits", "created": created, "spec_hash": f"{hash(lr):x}0" * 8})
    )
    write_resolved(
        folder,
        f"name: digits\ntraining:\n  epochs: {epochs}\n  optimizer:\n    adam: {{learning_rate: {lr}}}\n",
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
        stand_in_model(folder / "model.keras")  # a finished run's model is there
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
    assert rows[0]["epochs"] == 3 and rows[0]["seconds"] == 12.5
    assert [r["status"] for r in rows] == ["finished", "finished", "unfinished"]
    assert all(r["problems"] == [] for r in rows)
    # JSON is the machine-readable form: the whole hash lock.json stores (the table shows 12)
    lock = json.loads((run_tree / "a-run" / "lock.json").read_text())
    assert rows[0]["spec_hash"] == lock["spec_hash"] and len(lock["spec_hash"]) > 12


def test_a_run_a_live_process_trains_into_is_running_not_unfinished(runner, run_tree):
    """A run in progress and a killed one both read "unfinished" with no epochs. The lock a
    live process holds tells them apart; a killed run's lock file stays, naming a process that
    is gone, or one that took its PID since: no lock is held."""
    import os

    from cnnspec.training.runlock import LOCK_NAME, acquire

    trial = run_tree / "search" / "trial-000"

    def status() -> tuple[str, int | None]:
        rows = json.loads(runner.invoke(app, ["runs", str(run_tree), "--format", "json"]).output)
        return rows[2]["status"], rows[2]["epochs"]

    with acquire(trial):
        assert status() == ("running", 3)  # with its epochs so far
    (trial / LOCK_NAME).write_text(json.dumps({"pid": os.getpid(), "command": ["cnnspec", "train"]}))
    assert status() == ("unfinished", None)  # a live PID, but no lock: a killed run's file


def test_runs_table(runner, run_tree):
    result = runner.invoke(app, ["runs", str(run_tree)])
    assert result.exit_code == 0, result.output
    lock = json.loads((run_tree / "a-run" / "lock.json").read_text())
    assert lock["spec_hash"][:12] in result.output and lock["spec_hash"][:13] not in result.output
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

    text = runner.invoke(app, ["runs", "compare", str(a), str(b), "--png", str(png), "--force"])
    assert text.exit_code == 0
    assert "+0.0500" in flat(text.output) and "learning_rate: 0.01" in flat(text.output)


def test_compare_of_the_same_spec_says_so(runner, run_tree, tmp_path):
    a = run_tree / "a-run"
    result = runner.invoke(app, ["runs", "compare", str(a), str(a), "--png", str(tmp_path / "c.png")])
    assert result.exit_code == 0
    assert "resolved specs: the same" in flat(result.output)


def _starts_from(run: Path, weights: dict | None, transfer: dict | None = None) -> None:
    """What `cnnspec train` records of the starting weights: lock.json's ``weights`` (the
    --weights source, or null) and, when weights were loaded, transfer.json."""
    lock = json.loads((run / "lock.json").read_text())
    (run / "lock.json").write_text(json.dumps({**lock, "weights": weights}))
    if transfer is not None:
        (run / "transfer.json").write_text(json.dumps(transfer))


PRE = {"from": "runs/pre", "kind": "run", "file": "/work/runs/pre/model.keras", "strict": False}
LOADED = {"source": "/work/runs/pre/model.keras", "loaded": 15, "total": 17, "skipped": []}


def test_compare_of_one_spec_from_other_starting_weights_says_so(runner, tmp_path):
    """A fine-tuned run (--weights runs/pre) and a scratch run of the same spec differ."""
    created = "2026-01-01T10:00:00+0000"
    scratch = make_run(tmp_path / "scratch", lr=0.01, accuracy=0.5, created=created)
    tuned = make_run(tmp_path / "tuned", lr=0.01, accuracy=0.9, created=created)
    _starts_from(scratch, None)
    _starts_from(tuned, PRE, LOADED)
    png = str(tmp_path / "c.png")
    text = runner.invoke(app, ["runs", "compare", str(scratch), str(tuned), "--png", png])
    assert text.exit_code == 0, text.output
    assert "resolved specs: the same" in flat(text.output)  # they are; where they started is not
    assert "starting weights (A → B): random → runs/pre (loaded 15 of 17)" in flat(text.output)

    found = json.loads(
        runner.invoke(
            app,
            ["runs", "compare", str(scratch), str(tuned), "--png", png, "--format", "json", "--force"],
        ).stdout
    )
    assert found["starting_weights"] == {"a": "random", "b": "runs/pre (loaded 15 of 17)"}
    assert found["spec_diff"] == []


def test_compare_of_runs_from_the_same_weights_says_the_same(runner, tmp_path):
    created = "2026-01-01T10:00:00+0000"
    first = make_run(tmp_path / "first", lr=0.01, accuracy=0.5, created=created)
    second = make_run(tmp_path / "second", lr=0.01, accuracy=0.9, created=created)
    for run in (first, second):
        _starts_from(run, PRE, LOADED)
    result = runner.invoke(
        app, ["runs", "compare", str(first), str(second), "--png", str(tmp_path / "c.png")]
    )
    assert result.exit_code == 0, result.output
    assert "resolved specs: the same" in flat(result.output) and "starting weights" not in result.output
    # a spec's own weights (a backbone's): transfer.json without --weights in lock.json
    _starts_from(second, None, {**LOADED, "loaded": 17})
    result = runner.invoke(
        app, ["runs", "compare", str(first), str(second), "--png", str(tmp_path / "c.png"), "--force"]
    )
    assert (
        "starting weights (A → B): runs/pre (loaded 15 of 17) → the spec's /work/runs/pre/model.keras "
        "(loaded 17 of 17)" in flat(result.output)
    )


def test_compare_of_runs_from_one_path_with_other_bytes_says_so(runner, tmp_path):
    """runs/pre trained again between the two fine-tunings: the same source text, other weights."""
    created = "2026-01-01T10:00:00+0000"
    first = make_run(tmp_path / "first", lr=0.01, accuracy=0.5, created=created)
    second = make_run(tmp_path / "second", lr=0.01, accuracy=0.9, created=created)
    _starts_from(first, PRE, {**LOADED, "file": PRE["file"], "sha256": "a" * 64})
    _starts_from(second, PRE, {**LOADED, "file": PRE["file"], "sha256": "b" * 64})
    png = str(tmp_path / "c.png")
    result = runner.invoke(app, ["runs", "compare", str(first), str(second), "--png", png])
    assert result.exit_code == 0, result.output
    assert (
        f"starting weights (A → B): runs/pre (loaded 15 of 17, sha256 {'a' * 12}) → "
        f"runs/pre (loaded 15 of 17, sha256 {'b' * 12})" in flat(result.output)
    )


@pytest.mark.parametrize(
    "args",
    [["compare", "x"], ["compare", "a", "b", "c"], ["one", "two"]],
    ids=["one-run", "three-runs", "two-folders"],
)
def test_bad_runs_arguments_are_usage_errors(runner, args):
    result = runner.invoke(app, ["runs", *args])
    assert result.exit_code == 2
    assert "expected" in flat(result.output)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--png", "c.png"], "--png is for runs compare"),
        (["--force"], "--force is for runs compare"),
        (["--png", "c.png", "--force"], "--png and --force are for runs compare"),
    ],
)
def test_compare_options_in_list_mode_are_usage_errors(runner, run_tree, args, words):
    """The list draws nothing: an option it would drop is refused, and nothing is drawn."""
    result = runner.invoke(app, ["runs", str(run_tree), *args])
    assert result.exit_code == 2 and words in flat(result.output), result.output
    assert not Path("c.png").exists()


def test_compare_needs_run_folders(runner, run_tree, tmp_path):
    result = runner.invoke(app, ["runs", "compare", str(run_tree / "a-run"), str(run_tree / "notes")])
    assert result.exit_code == 2
    assert "is not one" in flat(result.output)


DAMAGED = {
    "metrics-list": ("metrics.json", "[0.5]", "metrics.json holds a JSON list, expected an object"),
    "metrics-empty-list": ("metrics.json", "[]", "metrics.json holds a JSON list, expected an object"),
    "lock-list": ("lock.json", "[1, 2]", "lock.json holds a JSON list, expected an object"),
    "lock-not-json": ("lock.json", "{bad", "lock.json is not valid JSON"),
    "accuracy-text": (
        "metrics.json",
        '{"test_accuracy": "0.9", "epochs_run": 3, "epochs_planned": 3}',
        "metrics.json: test_accuracy is a string ('0.9'), expected a number",
    ),
    "epochs-text": (
        "metrics.json",
        '{"test_accuracy": 0.9, "epochs_run": "3", "train_seconds": [1]}',
        "metrics.json: epochs_run is a string ('3'), expected a whole number",
    ),
    "name-number": ("lock.json", '{"name": 7, "created": {}}', "lock.json: name is a number (7)"),
    "output-list": (
        "metrics.json",
        '{"outputs": {"mask": [1], "box": {"task": "regression", "test_mae": "x"}}}',
        "metrics.json: outputs.mask is a list, expected an object",
    ),
}


@pytest.mark.parametrize("file, text, problem", DAMAGED.values(), ids=DAMAGED.keys())
def test_a_damaged_run_folder_is_listed_as_damaged_beside_the_others(runner, run_tree, file, text, problem):
    broken = make_run(run_tree / "broken", lr=0.1, accuracy=0.5, created="2026-01-04T10:00:00+0000")
    (broken / file).write_text(text)

    result = runner.invoke(app, ["runs", str(run_tree), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = {row["run"]: row for row in json.loads(result.stdout)}
    assert set(rows) == {"a-run", "b-run", "search/trial-000", "broken"}
    assert rows["a-run"]["status"] == "finished" and rows["a-run"]["test_accuracy"] == 0.9
    row = rows["broken"]
    assert row["status"] == "damaged"
    assert any(p.startswith(problem) for p in row["problems"]), row["problems"]
    # what has the wrong type is left out: every figure is a number or None
    for key in ("test_accuracy", "epochs", "epochs_planned", "seconds"):
        assert row[key] is None or isinstance(row[key], (int, float)), (key, row[key])
    for key in ("spec", "date", "spec_hash"):
        assert row[key] is None or isinstance(row[key], str), (key, row[key])

    table = runner.invoke(app, ["runs", str(run_tree)])
    assert table.exit_code == 0, table.output
    assert "0.9000" in flat(table.stdout) and "broken" in flat(table.stdout)
    assert f"damaged: {broken}: {problem}" in flat(table.stderr)


def test_non_finite_figures_are_shown_as_text(runner, tmp_path):
    run = make_run(tmp_path / "runs" / "diverged", lr=0.1, accuracy=None, created="2026-01-01T10:00:00+0000")
    (run / "metrics.json").write_text('{"test_accuracy": "nan", "train_seconds": Infinity, "epochs_run": 2}')
    stand_in_model(run / "model.keras")
    result = runner.invoke(app, ["runs", str(tmp_path / "runs"), "--format", "json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)  # strict JSON: no NaN/Infinity literals
    assert (row["status"], row["test_accuracy"], row["seconds"]) == ("finished", "nan", "inf")
    table = runner.invoke(app, ["runs", str(tmp_path / "runs")])
    assert table.exit_code == 0, table.output
    assert "nan" in flat(table.stdout) and "inf s" in flat(table.stdout)  # not "infs"


def test_runs_deeper_than_the_search_depth_are_hinted_at(runner, tmp_path):
    from cnnspec.reporting.runs import MAX_DEPTH

    deep = tmp_path / "deep"
    nested = deep.joinpath(*[f"level{i}" for i in range(MAX_DEPTH + 1)])
    make_run(nested / "run", lr=0.1, accuracy=0.5, created="2026-01-01T10:00:00+0000")
    result = runner.invoke(app, ["runs", str(deep)])
    assert result.exit_code == 0, result.output
    assert "0 run(s)" in flat(result.stdout)
    assert f"there are deeper ones (e.g. {nested / 'run'})" in flat(result.stderr)
    assert f"cnnspec runs {nested}" in flat(result.stderr)
    listed = runner.invoke(app, ["runs", str(nested), "--format", "json"])
    assert [row["run"] for row in json.loads(listed.stdout)] == ["run"]


def test_runs_deeper_than_the_search_depth_are_counted_beside_the_listed_ones(runner, tmp_path, monkeypatch):
    """A run at ./a/b/runs/r was left out without a word when other runs were found (the hint
    came only when none was)."""
    from cnnspec.reporting import runs as runs_module
    from cnnspec.reporting.runs import MAX_DEPTH

    root = tmp_path / "tree"
    make_run(root / "near", lr=0.1, accuracy=0.5, created="2026-01-01T10:00:00+0000")
    deep = root.joinpath(*[f"level{i}" for i in range(MAX_DEPTH)])
    for name in ("r1", "r2"):
        make_run(deep / name, lr=0.2, accuracy=0.6, created="2026-01-02T10:00:00+0000")
    result = runner.invoke(app, ["runs", str(root), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert [row["run"] for row in json.loads(result.stdout)] == ["near"]
    note = flat(result.stderr)
    assert (
        f"note: 2 more run folder(s) lie deeper than {MAX_DEPTH} levels under {root} and are not listed "
        f"(e.g. {deep / 'r1'})"
    ) in note
    assert f"hint: list them with: cnnspec runs {deep}" in note
    listed = runner.invoke(app, ["runs", str(deep), "--format", "json"])
    assert [row["run"] for row in json.loads(listed.stdout)] == ["r1", "r2"] and not listed.stderr
    # the search for them is bounded (a huge tree costs little): its count is then a lower bound
    monkeypatch.setattr(runs_module, "DEEPER_FOLDERS", MAX_DEPTH + 3)
    cut = runner.invoke(app, ["runs", str(root)])
    assert "note: at least 1 more run folder(s) lie deeper" in flat(cut.stderr)
    assert "1 run(s) in" in flat(cut.stdout)


def test_an_empty_folder_gets_no_deeper_hint(runner, tmp_path):
    (tmp_path / "empty" / "a" / "b" / "c" / "d" / "e").mkdir(parents=True)
    result = runner.invoke(app, ["runs", str(tmp_path / "empty")])
    assert result.exit_code == 0 and "0 run(s)" in flat(result.stdout)
    assert "deeper" not in result.stderr


def test_compare_plots_nan_and_inf_losses_as_numbers(run_tree):
    from cnnspec.reporting.runs import curves

    a, b = run_tree / "a-run", run_tree / "b-run"
    # history.json stores non-finite values as text, as training writes them
    (a / "history.json").write_text(
        json.dumps({"epoch": [1, 2, 3], "loss": [1.0, "nan", "inf"], "val_loss": [1.2, 0.8, "-inf"]})
    )
    drawn = curves(a, b)
    assert set(drawn) == {"accuracy", "loss"}
    lines = {line["label"]: line for line in drawn["loss"]}
    training = lines["a-run training"]["y"]
    assert all(isinstance(v, float) for v in training)
    assert training[0] == 1.0 and math.isnan(training[1]) and training[2] == math.inf
    assert lines["a-run validation"]["y"][2] == -math.inf
    assert lines["a-run training"]["linestyle"] == "-" and lines["a-run validation"]["linestyle"] == "--"
    assert lines["b-run training"]["y"] == pytest.approx([1.0, 0.5, 1 / 3])
    assert not any(line["label"].startswith("a-run") for line in drawn["accuracy"])  # not in a's history


def test_compare_notes_a_damaged_history_and_still_draws_the_other_run(runner, run_tree, tmp_path):
    a, b = run_tree / "a-run", run_tree / "b-run"
    (a / "history.json").write_text("[1, 2]")
    (b / "metrics.json").write_text('{"test_accuracy": "high"}')
    png = tmp_path / "c.png"
    result = runner.invoke(app, ["runs", "compare", str(a), str(b), "--png", str(png), "--format", "json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert any(note.startswith(f"{a}: no learning curves drawn") for note in found["notes"])
    assert f"{b}: metrics.json: test_accuracy is a string ('high'), expected a number" in found["notes"]
    # the wrong-typed figure is left to the notes; A's others show with B's side missing
    assert "test_accuracy" not in {row["metric"] for row in found["metrics"]}
    assert found["metrics"] and all(row["missing"] == ["B"] for row in found["metrics"])
    assert png.read_bytes()[:4] == b"\x89PNG"
    text = runner.invoke(app, ["runs", "compare", str(a), str(b), "--png", str(png), "--force"])
    assert text.exit_code == 0, text.output
    assert "no learning curves drawn" in flat(text.stderr)


def test_compare_never_draws_into_a_third_run_folder_in_use_or_not(runner, run_tree):
    """A third run's folder (not one compared) is refused, as report/evaluate/visualize -o
    refuse another run's (it was written under that run's lock: its own pictures are read as
    its results); the path elsewhere is drawn while that run is in use."""
    from cnnspec.training.runlock import LOCK_NAME, acquire

    a, b = run_tree / "a-run", run_tree / "b-run"
    c = make_run(run_tree / "c-run", lr=0.1, accuracy=0.5, created="2026-01-04T10:00:00+0000")
    with acquire(c, ["cnnspec", "train", "--resume", str(c)]):
        busy = runner.invoke(app, ["runs", "compare", str(a), str(b), "--png", str(c / "curves.png")])
        assert busy.exit_code == 2, busy.output
        assert "which is not compared" in flat(busy.output) and not (c / "curves.png").exists()
        elsewhere = runner.invoke(app, ["runs", "compare", str(a), str(b), "--png", str(run_tree / "x.png")])
        assert elsewhere.exit_code == 0, elsewhere.output
    result = runner.invoke(app, ["runs", "compare", str(a), str(b), "--png", str(c / "curves.png")])
    assert result.exit_code == 2, result.output
    assert not (c / "curves.png").exists() and not (c / LOCK_NAME).exists()


@pytest.mark.parametrize(
    "inside", ["a-run/model.keras", "a-run/lock.json", "b-run/new.png", "b-run/sub/x.png"]
)
@pytest.mark.parametrize("force", [False, True])
def test_compare_never_writes_into_a_compared_run(runner, run_tree, inside, force):
    a, b = run_tree / "a-run", run_tree / "b-run"
    (a / "model.keras").write_bytes(b"weights")
    before = {p: p.read_bytes() for p in run_tree.rglob("*") if p.is_file()}
    target = run_tree / inside
    result = runner.invoke(
        app, ["runs", "compare", str(a), str(b), "--png", str(target), *(["--force"] if force else [])]
    )
    assert result.exit_code == 2, result.output
    assert "inside the compared run folder" in flat(result.output) and "Traceback" not in result.output
    assert {p: p.read_bytes() for p in run_tree.rglob("*") if p.is_file()} == before


def test_compare_replaces_its_own_png_and_another_only_with_force(runner, run_tree, tmp_path):
    """The rule README, "A short tour", and ``--force``'s help state: an existing ``--png`` file is
    replaced when cnnspec drew it (its PNG mark), anything else only with ``--force``."""
    a, b = run_tree / "a-run", run_tree / "b-run"
    spec = tmp_path / "victim.png"  # (a .yaml is refused for its suffix: test_report_audit2)
    spec.write_text("name: mine\n")
    refused = runner.invoke(app, ["runs", "compare", str(a), str(b), "--png", str(spec)])
    assert refused.exit_code == 2, refused.output
    assert f"{spec} already exists and carries no mark" in flat(refused.output)
    assert "pass --force" in flat(refused.output)
    assert spec.read_text() == "name: mine\n"
    forced = runner.invoke(app, ["runs", "compare", str(a), str(b), "--png", str(spec), "--force"])
    assert forced.exit_code == 0, forced.output
    assert spec.read_bytes()[:4] == b"\x89PNG"
    # its own picture, compared again, is replaced without --force (it was refused)
    again = runner.invoke(app, ["runs", "compare", str(a), str(b), "--png", str(spec)])
    assert again.exit_code == 0, again.output
    # a real picture that cnnspec did not draw (no `Software: cnnspec` text) is refused as well
    from PIL import Image

    photo = tmp_path / "photo.png"
    Image.new("RGB", (4, 4), "red").save(photo)
    drawn = photo.read_bytes()
    foreign = runner.invoke(app, ["runs", "compare", str(a), str(b), "--png", str(photo)])
    assert foreign.exit_code == 2, foreign.output
    assert f"{photo} already exists and carries no mark of cnnspec's" in flat(foreign.output)
    assert photo.read_bytes() == drawn
    # (docs/cli.md is the --help text, kept fresh by test_cli_reference)
    reference = (Path(__file__).resolve().parent.parent / "docs" / "cli.md").read_text(encoding="utf-8")
    assert (
        "| `--force` | flag |  | compare: replace an existing --png picture that cnnspec did not draw |"
        in reference
    )


def _whole_epoch_ticks(axes) -> list[float]:
    """The x ticks in view, after the figure is drawn."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(axes.figure).draw()
    low, high = axes.get_xlim()
    return [tick for tick in axes.get_xticks() if low <= tick <= high]


def test_compare_draws_a_one_epoch_run_as_points_on_a_whole_epoch_axis(tmp_path):
    from cnnspec.reporting.runs import curves_figure

    created = "2026-01-01T10:00:00+0000"
    a = make_run(tmp_path / "one", lr=0.01, accuracy=0.5, created=created, epochs=1)
    b = make_run(tmp_path / "two", lr=0.02, accuracy=0.6, created=created, epochs=1)
    for axes in curves_figure(a, b).axes:
        assert axes.lines and all(line.get_marker() == "o" for line in axes.lines)  # a point shows
        assert _whole_epoch_ticks(axes) == [1.0]
        assert axes.get_xlim() == (0.5, 1.5)


def test_history_png_of_one_epoch_has_whole_epoch_ticks():
    from cnnspec.training.plots import history_figure

    figure = history_figure({"epoch": [1], "loss": [0.9], "val_loss": [1.1], "accuracy": [0.5]})
    for axes in figure.axes:
        assert _whole_epoch_ticks(axes) == [1.0] and axes.get_xlim() == (0.5, 1.5)
    longer = history_figure({"epoch": [1, 2, 3], "loss": [0.9, 0.5, 0.4]})
    assert _whole_epoch_ticks(longer.axes[0]) == [1.0, 2.0, 3.0]


def _panels(figure) -> dict[str, list[str]]:
    """Each panel's title → the labels of its lines."""
    return {axes.get_title(): [line.get_label() for line in axes.lines] for axes in figure.axes}


def test_history_png_draws_a_classifiers_accuracy_and_loss_as_before():
    from cnnspec.training.plots import history_figure

    figure = history_figure(
        {"epoch": [1, 2], "loss": [0.9, 0.5], "accuracy": [0.5, 0.7], "val_loss": [1.0, 0.6],
         "val_accuracy": [0.4, 0.6], "learning_rate": [0.01, 0.01], "seconds": [1.2, 0.4]}
    )  # fmt: skip
    assert _panels(figure) == {
        "Accuracy": ["training accuracy", "validation accuracy"],
        "Loss": ["training loss", "validation loss"],
    }
    assert tuple(figure.get_size_inches()) == (11.0, 4.0)  # the seed notebook's picture


def test_history_png_draws_every_figure_a_task_or_output_logged():
    """A regression's mae, a segmentation's mean IoU, each output's own loss and figures: a
    panel each, training beside validation; the learning rate, seconds and phase are no panel."""
    from cnnspec.training.plots import history_figure

    history = {
        "epoch": [1, 2, 3],
        "phase": [1, 1, 2],
        "learning_rate": [0.01, 0.01, 0.001],
        "seconds": [3, 1, 1],
    }
    for name in ("loss", "mask_loss", "label_loss", "mask_mean_iou", "label_accuracy"):
        history[name] = [0.5, 0.4, 0.3]
        history[f"val_{name}"] = [0.6, 0.5, 0.4]
    figure = history_figure(history)
    panels = _panels(figure)
    assert list(panels) == ["Loss", "mask_loss", "label_loss", "mask_mean_iou", "label_accuracy"]
    for name, labels in panels.items():
        key = "loss" if name == "Loss" else name
        assert labels[:2] == [f"training {key}", f"validation {key}"], name
    assert all(len(axes.texts) == 1 for axes in figure.axes)  # "phase 2" on every panel
    assert tuple(figure.get_size_inches()) == (16.5, 8.0)  # two rows of three


def test_history_png_names_the_figures_it_has_no_room_for():
    from cnnspec.training.plots import MAX_HISTORY_PANELS, history_figure

    history = {"loss": [0.5, 0.4]} | {f"out{i}_loss": [0.5, 0.4] for i in range(MAX_HISTORY_PANELS + 1)}
    figure = history_figure(history)
    assert len(figure.axes) == MAX_HISTORY_PANELS
    (note,) = figure.texts
    assert note.get_text() == "2 more in history.csv: out11_loss, out12_loss"


def test_runs_compare_and_history_png_choose_their_panels_alike():
    from cnnspec.reporting.runs import MAX_PANELS, curve_panels
    from cnnspec.training.plots import curve_names

    regression = {
        "epoch": [1],
        "loss": [1.0],
        "mae": [0.5],
        "val_loss": [1.1],
        "val_r2": [0.2],
        "seconds": [1.0],
    }
    assert curve_names([regression]) == ["loss", "mae", "r2"]  # r2 logged for validation only
    assert curve_panels([regression]) == ["loss", "mae", "r2"]
    classifier = {"accuracy": [0.5], "loss": [1.0]}
    assert curve_names([regression, classifier]) == ["accuracy", "loss", "mae", "r2"]
    many = {f"m{i}": [1.0] for i in range(9)}
    assert curve_panels([many]) == curve_names([many])[:MAX_PANELS]


@pytest.mark.parametrize("spec", ["digits_cnn.yaml", "unet_shapes.yaml"], ids=["classifier", "task"])
def test_the_generated_scripts_history_png_has_whole_epoch_ticks(tmp_path, monkeypatch, spec):
    """The script draws its own history.png (both templates): epochs from 1 on whole ticks, a
    one-epoch run as points, as cnnspec train draws it."""
    import shutil

    import matplotlib.pyplot as plt

    from tests.conftest import ROOT
    from tests.test_listing_edges import script_functions

    shutil.copy(ROOT / "specs" / spec, tmp_path / spec)
    drawn = []
    monkeypatch.setattr(plt, "close", drawn.append)  # keep the figure the function closes
    script_functions(tmp_path / spec)["plot_history"]({"loss": [0.9], "val_loss": [1.1]}, tmp_path)
    (axes,) = drawn[0].axes
    assert _whole_epoch_ticks(axes) == [1.0] and axes.get_xlim() == (0.5, 1.5)
    assert all(line.get_marker() == "o" for line in axes.get_lines())
    assert (tmp_path / "history.png").read_bytes().startswith(b"\x89PNG")


def _part(source: str, loaded: int, total: int, skipped: list, **more: object) -> dict:
    return {"source": source, "loaded": loaded, "total": total, "skipped": skipped, **more}


def test_compare_counts_each_tensor_once_when_a_backbone_and_the_whole_model_loaded(runner, tmp_path):
    """A backbone's source (3 tensors of bb) and the whole model's (the head's 2 of the model's
    5): an older cnnspec's transfer.json added the parts up, `loaded 5 of 8`; compare counts
    the model's tensors again from the parts, and reads a report that counts them once as it is."""
    missing = [{"layer": f"bb_c{i}", "weight": "kernel", "reason": "missing in the source"} for i in range(3)]
    # one tensor bb's source did not fit either: skipped, whichever source is asked
    missed = {"layer": "bb_n", "weight": "gamma", "reason": "shape mismatch: source [2], model [4]"}
    body = _part("/w/pre/model.keras", 3, 4, [missed], scope="bb")
    older = {
        "source": "/w/pre/model.keras; /w/head.weights.h5",
        "loaded": 5,
        "total": 10,
        "skipped": [*missing, missed],
        "parts": [body, _part("/w/head.weights.h5", 2, 6, [*missing, missed])],
    }
    newer = {
        **older,
        "loaded": 5,
        "total": 6,
        "skipped": [missed],
        "parts": [body, _part("/w/head.weights.h5", 2, 3, [missed], loaded_from_other_sources=3)],
    }
    created = "2026-01-01T10:00:00+0000"
    first = make_run(tmp_path / "first", lr=0.01, accuracy=0.5, created=created)
    second = make_run(tmp_path / "second", lr=0.01, accuracy=0.9, created=created)
    _starts_from(first, None, older)
    _starts_from(second, None, newer)
    png = str(tmp_path / "c.png")
    result = runner.invoke(
        app, ["runs", "compare", str(first), str(second), "--png", png, "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)["starting_weights"]
    assert found["a"].endswith("(loaded 5 of 6)") and found["b"].endswith("(loaded 5 of 6)")


def test_compare_without_png_shortens_a_default_name_too_long_and_shows_the_comparison(
    runner, tmp_path, monkeypatch
):
    """Two run folders of 130-character names: the default compare-A-B.png (273 bytes) was
    refused as a --png name too long, exit 2, and no comparison was shown. Each name is cut to
    an equal share, and a hash of the whole name keeps pairs apart; a short pair keeps its name."""
    import hashlib

    a = make_run(tmp_path / ("a" * 130), lr=0.001, accuracy=0.9, created="2026-01-01T10:00:00+0000")
    b = make_run(tmp_path / ("b" * 130), lr=0.01, accuracy=0.95, created="2026-01-02T10:00:00+0000")
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    result = runner.invoke(app, ["runs", "compare", str(a), str(b)], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    digest = hashlib.sha256(f"compare-{a.name}-{b.name}.png".encode()).hexdigest()[:8]
    share = (255 - len("..XXXXXXXX.tmp") - len(f"compare---{digest}.png")) // 2  # 111 bytes each
    name = f"compare-{'a' * share}-{'b' * share}-{digest}.png"
    assert [p.name for p in (tmp_path / "here").iterdir()] == [name]
    assert "+0.0500" in flat(result.output) and f"learning curves: {name}" in flat(result.output)

    short_a = make_run(tmp_path / "é-run", lr=0.001, accuracy=0.9, created="2026-01-01T10:00:00+0000")
    result = runner.invoke(app, ["runs", "compare", str(short_a), str(b)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "here" / f"compare-é-run-{'b' * 130}.png").is_file()
