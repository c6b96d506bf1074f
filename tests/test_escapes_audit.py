"""Output escaping of ``cnnspec runs compare`` and ``cnnspec search`` (security audit, part 2):
run folder names, resolved.yaml, the ``--out`` path, a failed trial's exception and whatever a
worker sharing the study storage wrote into a trial reach the terminal with their control
characters escaped and their ``[…]`` printed as text (never a MarkupError, exit 3); figure
labels are printable (matplotlib's missing-glyph warning printed a raw ESC on stderr) and read
no mathtext; search.html links only to files inside its folder. Fast: no TensorFlow (a search
runs with a stand-in for the training)."""

from __future__ import annotations

import json
import warnings
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from cnnspec.cli.app import app
from tests.test_runs import write_resolved

#: What must never reach the terminal: C0 controls but the line breaks the command prints
#: itself, DEL, and the C1 controls (0x9b is a one-byte CSI on some terminals).
RAW = {chr(c) for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))} - {"\n"}
#: A run folder's name: a title-setting OSC, a colour CSI, and Rich markup (a style tag that
#: would colour what follows instead of being shown).
HOSTILE = "run\x1b]0;TITLE\x07\x1b[31mRED[bold]"
SHOWN = "run\\x1b]0;TITLE\\x07\\x1b[31mRED[bold]"

SEARCH_SPEC = """\
cnnspec: 1
name: tiny_search
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}
  - global_avg_pool2d
  - {id: drop, dropout: 0.1}
  - dense: {units: 10, activation: softmax}
data: {source: digits, limit: 128}
training: {epochs: 1, batch_size: 32, seed: 1}
search:
  trials: 2
  seed: 3
  pruner: none
  space:
    drop.rate: {float: [0.0, 0.5]}
"""


def assert_no_raw_control(text: str) -> None:
    """No character of :data:`RAW` in ``text``."""
    raw = sorted({f"\\x{ord(ch):02x}" for ch in text if ch in RAW})
    assert not raw, f"raw control characters {raw} in {text!r}"


def flat(text: str) -> str:
    """Output with Rich's line wrapping undone."""
    return " ".join(text.split())


def make_run(folder: Path, description: str, losses: list[float] | None = None) -> Path:
    """A hand-made run folder: lock.json, a resolved.yaml with ``description``, and (with
    ``losses``) a history.json to draw."""
    folder.mkdir(parents=True)
    (folder / "lock.json").write_text("{}", encoding="utf-8")
    # (recorded in lock.json as training records it: this part of a spec alone does not compile)
    write_resolved(folder, f"cnnspec: 1\nname: {folder.name[:3]}\ndescription: {description}\n")
    if losses is not None:
        epochs = list(range(1, len(losses) + 1))
        (folder / "history.json").write_text(json.dumps({"epoch": epochs, "loss": losses}), encoding="utf-8")
    return folder


# -- runs compare ---------------------------------------------------------------------------------


def test_runs_compare_prints_the_spec_diff_escaped(runner: Any, tmp_path: Path) -> None:
    """The diff's header names the run folder and its lines quote resolved.yaml: both escaped,
    a ``[…]`` in either shown as written."""
    a = make_run(tmp_path / HOSTILE, "\x1b[2J\x1b[1;31mCLEARED [bold]x[/bold] [/y]")
    b = make_run(tmp_path / "runB", "plain")
    result = runner.invoke(app, ["runs", "compare", str(a), str(b), "--png", str(tmp_path / "c.png")])
    assert result.exit_code == 0, result.output
    assert_no_raw_control(result.stdout)
    assert_no_raw_control(result.stderr)
    text = flat(result.stdout)
    assert f"--- {tmp_path}/{SHOWN}/resolved.yaml" in text  # the header: the folder escaped
    assert "-description: \\x1b[2J\\x1b[1;31mCLEARED [bold]x[/bold] [/y]" in text  # markup as text
    assert "+description: plain" in text


def test_runs_compare_labels_its_curves_printably(runner: Any, tmp_path: Path) -> None:
    """A folder name with control characters is a figure label with them escaped (no raw ESC in
    matplotlib's missing-glyph warning on stderr), and one with ``$…$`` is no mathtext (an
    unparsable one ended the command with an internal error)."""
    from cnnspec.reporting.runs import curves, curves_figure

    a = make_run(tmp_path / HOSTILE, "a", losses=[1.0, 0.5])
    b = make_run(tmp_path / "b$\\frac$", "b", losses=[1.2, 0.7])
    labels = [line["label"] for series in curves(a, b).values() for line in series]
    assert f"{SHOWN} training" in labels and "b\\$\\frac\\$ training" in labels
    for label in labels:
        assert_no_raw_control(label)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        figure = curves_figure(a, b)
        assert_no_raw_control(figure.get_suptitle())
    for warning in caught:
        assert_no_raw_control(str(warning.message))

    result = runner.invoke(app, ["runs", "compare", str(a), str(b), "--png", str(tmp_path / "c.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "c.png").is_file()
    assert_no_raw_control(result.stdout)
    assert_no_raw_control(result.stderr)


# -- search: the progress lines and the leaderboard ------------------------------------------------


@pytest.fixture
def failing_train(monkeypatch: pytest.MonkeyPatch) -> None:
    """``cnnspec search`` without TensorFlow: every trial's training raises an error whose text
    holds an ESC sequence and Rich markup (a data file's name in an exception)."""
    pytest.importorskip("optuna")
    from cnnspec.search import worker
    from cnnspec.training import trainer

    class Pruning:
        pruned_at = None

    def train(compiled: Any, *, out: Path, **_: Any) -> Any:
        raise RuntimeError("bad file \x1b[31mred[/z].png")

    monkeypatch.setattr(trainer, "train", train)
    monkeypatch.setattr(worker, "_quiet_tensorflow", lambda: None)
    monkeypatch.setattr(worker, "pruning_callback", lambda trial, metric: Pruning())


def test_search_prints_its_progress_and_leaderboard_escaped(
    runner: Any, write_spec: Any, tmp_path: Path, failing_train: None
) -> None:
    """An ``--out`` with an ESC and ``[/x]`` whose trial-000 already exists: trial 0 is skipped
    (its line names the folder), the next ones fail (their lines quote the exception); the
    leaderboard shows both reasons. Every line escaped; the search ends as a failed one (exit 1), not with
    an internal error's MarkupError (exit 3)."""
    out = tmp_path / "[/x]\x1b[31mo"
    (out / "trial-000").mkdir(parents=True)
    result = runner.invoke(app, ["search", str(write_spec(SEARCH_SPEC)), "--out", str(out), "-n", "2"])
    assert result.exit_code == 1, result.output
    assert "internal error" not in result.output
    assert_no_raw_control(result.stdout)
    assert_no_raw_control(result.stderr)
    shown = f"{tmp_path}/[/x]\\x1b[31mo"
    lines = result.stdout.split("\n")
    assert f"trial 0: skipped ({shown}/trial-000 already exists; the next trial takes its values)" in lines
    assert "trial 1: failed (RuntimeError: bad file \\x1b[31mred[/z].png)" in lines
    # the leaderboard: each failed trial's reason (a taken folder is no trial of --trials)
    assert "fail: RuntimeError: bad file \\x1b[31mred[/z].png" in result.stdout
    assert "skipped: run folder taken: " in result.stdout


def test_a_trial_whose_folder_is_taken_gives_its_values_to_the_next(
    runner: Any, write_spec: Any, tmp_path: Path, failing_train: None
) -> None:
    """A grid sampler counted the skipped trial's point as visited: it was never trained, and
    another point twice. The next trial takes the skipped one's values."""
    import json

    out = tmp_path / "out"
    (out / "trial-000").mkdir(parents=True)
    runner.invoke(app, ["search", str(write_spec(SEARCH_SPEC)), "--out", str(out), "-n", "2"])
    trials = {t["number"]: t for t in json.loads((out / "search.json").read_text())["trials"]}
    assert trials[1]["params"] == trials[0]["params"] and trials[0]["params"]


#: Text a worker sharing the storage may write into a trial: Rich markup closing a tag nobody
#: opened (MarkupError, exit 3) and a title-setting OSC.
STORED = "[/x]\x1b]0;T\x07"
STORED_SHOWN = "[/x]\\x1b]0;T\\x07"


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("failed", STORED, f"fail: {STORED_SHOWN}"),
        ("pruned_at_epoch", STORED, f"@{STORED_SHOWN}"),
        ("epochs", STORED, STORED_SHOWN),
        ("test_value", STORED, STORED_SHOWN),  # (no number: `:.4f` raised ValueError)
        ("test_metric", STORED, STORED_SHOWN),  # the test column's heading
        ("test_metric", 5, " 5 "),  # (no text: `.replace` raised AttributeError)
    ],
)
def test_the_leaderboard_shows_the_storages_text_escaped(
    capsys: pytest.CaptureFixture[str], key: str, value: Any, shown: str
) -> None:
    """What a worker sharing the storage wrote into a trial (why it failed, the epoch it was
    pruned at, its epochs, its test metric and value: any JSON value) is printed as text,
    escaped."""
    from cnnspec.cli.search import leaderboard

    state = "FAIL" if key == "failed" else "PRUNED" if key == "pruned_at_epoch" else "COMPLETE"
    row = {"number": 0, "state": state, "value": 0.5, "params": {}, "epochs": 2, key: value}
    summary = {
        "study": "s",
        "direction": "maximize",
        "objective": "val_accuracy",
        "space": [],
        "counts": {state: 1},
        "best": None,
        "files": {"json": "search.json", "html": "search.html"},
        "trials": [row],
    }
    leaderboard(summary)
    captured = capsys.readouterr()
    assert_no_raw_control(captured.out)
    assert shown in captured.out


def test_a_worker_processs_error_line_is_escaped() -> None:
    """A worker process's last line (printed plain, not through Rich) quotes its error: control
    characters escaped, the message's own line breaks kept."""
    from cnnspec.search.runner import worker_error_line

    line = worker_error_line(1, "cannot write /o/\x1b[2Jx\r:\nsecond line")
    assert line == "error: [worker 1] cannot write /o/\\x1b[2Jx\\x0d:\nsecond line"
    assert_no_raw_control(line)


# -- search.html -------------------------------------------------------------------------------


class Links(HTMLParser):
    """Every ``href`` of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hrefs += [value or "" for name, value in attrs if name == "href"]


def hrefs(page: str) -> list[str]:
    parser = Links()
    parser.feed(page)
    return parser.hrefs


@pytest.mark.parametrize(
    "run_dir",
    ["{elsewhere}", "/{elsewhere}", "../elsewhere", "sub/../../elsewhere", 7],
    ids=["absolute", "protocol-relative", "parent", "through-parent", "number"],
)
def test_search_html_links_only_to_reports_inside_its_folder(tmp_path: Path, run_dir: Any) -> None:
    """A trial's ``run_dir`` from the storage that is absolute (with a report.html there: it was
    an absolute link), protocol-relative (``//host/…``: a link to another host), leaves the
    folder, or is no text (``out / 7`` raised TypeError) gets no link; the trial folder inside
    it keeps its relative link."""
    optuna = pytest.importorskip("optuna")
    from cnnspec.search.results import trial_rows, write_html

    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    for folder in (out / "trial-000", elsewhere, out / "sub"):
        folder.mkdir(parents=True)
        (folder / "report.html").write_text("<p>report</p>", encoding="utf-8")
    if isinstance(run_dir, str):
        run_dir = run_dir.format(elsewhere=elsewhere)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    for index, attribute in enumerate(["trial-000", run_dir]):
        trial = study.ask()
        trial.set_user_attr("run_dir", attribute)
        study.tell(trial, 0.1 * index)
    rows = trial_rows(study, out)
    assert [row["report"] for row in rows] == ["trial-000/report.html", None]
    page = tmp_path / "search.html"
    write_html(page, summary_of(rows))
    assert hrefs(page.read_text(encoding="utf-8")) == ["trial-000/report.html"]


@pytest.mark.parametrize(
    "report",
    ["/abs/path/report.html", "//host/x/report.html", "../x/report.html", "a/../../x/report.html"],
)
def test_search_html_refuses_a_stored_report_outside_its_folder(tmp_path: Path, report: str) -> None:
    """A ``report`` as a search.json written elsewhere may hold it: no link that is absolute,
    protocol-relative or leaves the page's folder."""
    row = {"number": 1, "state": "COMPLETE", "value": 0.5, "params": {}, "epochs": 1, "report": report}
    page = tmp_path / "search.html"
    write_html_of(page, [row])
    text = page.read_text(encoding="utf-8")
    assert hrefs(text) == [] and "trial 1" in text


def summary_of(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A search.json's content around ``rows``."""
    return {
        "study": "s",
        "storage": "journal",
        "objective": "val_accuracy",
        "direction": "maximize",
        "sampler": "tpe",
        "pruner": "none",
        "space": [],
        "counts": {"COMPLETE": len(rows)},
        "best": None,
        "files": {},
        "trials": rows,
    }


def write_html_of(page: Path, rows: list[dict[str, Any]]) -> None:
    """search.html of ``rows``."""
    from cnnspec.search.results import write_html

    write_html(page, summary_of(rows))
