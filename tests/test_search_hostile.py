"""``cnnspec search`` against hostile files (search/study.py, search/results.py): a link where
the study journal goes never lets a user's file be cut or appended to, and search.html runs no
script whatever a worker sharing the storage wrote into a trial, and names with Rich markup in
them print as text. Fast: only the tests marked slow train (one trial of a tiny model each; the two
that read what a search prints share one)."""

from __future__ import annotations

import os
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from cnnspec.cli.app import app
from cnnspec.errors import UsageError

SPEC = """\
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
  trials: 1
  space:
    drop.rate: {float: [0.0, 0.5]}
"""

#: A file of the user's whose only line has no newline: the journal repair would have cut it
#: to nothing (a half-written last line), and Optuna then appended the study to it.
VICTIM = b"my notes, no newline at the end"
#: A journal whose last operation was half written by a killed process.
HALF_WRITTEN = b'{"op_code": 0, "worker_id": "w", "study_name": "x", "directions": [1]}\n{"op_co'


def flat(text: str) -> str:
    """Output with Rich's line wrapping undone."""
    return " ".join(text.split())


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "home" / "notes.txt"
    path.parent.mkdir()
    path.write_bytes(VICTIM)
    return path


def search(runner, write_spec, *args: str):
    pytest.importorskip("optuna")
    return runner.invoke(app, ["search", str(write_spec(SPEC)), *args])


# -- the study journal ------------------------------------------------------------------------


def test_a_symlinked_default_journal_is_refused_and_its_target_left_alone(
    runner, write_spec, tmp_path, victim
):
    out = tmp_path / "out"
    out.mkdir()
    (out / "study.journal").symlink_to(victim)
    result = search(runner, write_spec, "--out", str(out))
    assert result.exit_code == 2, result.output
    output = flat(result.output)
    assert "found a symlink" in output and "--storage" in output and "Traceback" not in output
    assert victim.read_bytes() == VICTIM
    assert (out / "study.journal").is_symlink()
    assert not (out / "study.journal.bak").exists() and not list(out.glob("trial-*"))


def test_a_dangling_symlink_as_the_default_journal_creates_nothing_where_it_leads(
    runner, write_spec, tmp_path
):
    out = tmp_path / "out"
    out.mkdir()
    (out / "study.journal").symlink_to(tmp_path / "elsewhere.txt")
    result = search(runner, write_spec, "--out", str(out))
    assert result.exit_code == 2, result.output
    assert "found a symlink" in flat(result.output)
    assert not (tmp_path / "elsewhere.txt").exists()


def test_a_hard_linked_default_journal_is_refused(runner, write_spec, tmp_path, victim):
    out = tmp_path / "out"
    out.mkdir()
    os.link(victim, out / "study.journal")
    result = search(runner, write_spec, "--out", str(out))
    assert result.exit_code == 2, result.output
    assert "found a hard link" in flat(result.output)
    assert victim.read_bytes() == VICTIM


def test_a_symlink_named_by_storage_is_used_but_never_cut_through(runner, write_spec, tmp_path):
    pytest.importorskip("optuna")
    from cnnspec.search.study import journal_path, open_storage

    target = tmp_path / "shared" / "study.journal"
    target.parent.mkdir()
    link = tmp_path / "chosen.journal"
    link.symlink_to(target)
    assert journal_path(str(link), tmp_path / "out") == link  # the user's choice: taken as named
    open_storage(str(link), tmp_path / "out")
    assert target.is_file() and link.is_symlink()

    target.write_bytes(HALF_WRITTEN)
    result = search(runner, write_spec, "--out", str(tmp_path / "out2"), "--storage", str(link))
    assert result.exit_code == 2, result.output
    assert "cuts no file through it" in flat(result.output) and "Traceback" not in result.output
    assert target.read_bytes() == HALF_WRITTEN
    assert not (tmp_path / "chosen.journal.bak").exists()


def test_a_repair_writes_its_backup_over_a_planted_link_not_through_it(tmp_path, victim):
    pytest.importorskip("optuna")
    from cnnspec.search.study import repair_journal

    journal = tmp_path / "study.journal"
    journal.write_bytes(HALF_WRITTEN)
    backup = tmp_path / "study.journal.bak"
    backup.symlink_to(victim)
    note = repair_journal(journal)
    assert note is not None and "half written" in note
    assert victim.read_bytes() == VICTIM
    assert not backup.is_symlink() and backup.read_bytes() == HALF_WRITTEN
    assert journal.read_bytes() == HALF_WRITTEN[: HALF_WRITTEN.rindex(b"\n") + 1]


def test_the_default_journal_check_passes_nothing_or_a_plain_file(tmp_path):
    from cnnspec.search.study import journal_path

    assert journal_path(None, tmp_path) == tmp_path / "study.journal"  # nothing there yet
    (tmp_path / "study.journal").write_bytes(HALF_WRITTEN)
    assert journal_path(None, tmp_path) == tmp_path / "study.journal"
    (tmp_path / "study.journal").unlink()
    (tmp_path / "study.journal").mkdir()
    with pytest.raises(UsageError, match="found a folder"):
        journal_path(None, tmp_path)


# -- search.html --------------------------------------------------------------------------------

EVIL = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'&"


class Tags(HTMLParser):
    """Every tag of a page with its attributes, and the text of its <style>/<script> tags."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def hostile_summary(tmp_path: Path) -> dict:
    """search.json's content as write_html takes it, with markup in every field a worker sharing
    the storage (trial user attributes, params) or the spec can set."""
    (tmp_path / "javascript:alert(3)").mkdir()
    (tmp_path / "javascript:alert(3)" / "report.html").write_text("x")
    row = {
        "number": 0,
        "state": "PRUNED",
        "params": {EVIL: EVIL},
        "value": EVIL,
        "run_dir": "javascript:alert(3)",
        "report": "javascript:alert(3)/report.html",
        "epochs": EVIL,
        "pruned_at_epoch": EVIL,
        "test_metric": EVIL,
        "test_value": EVIL,
        "failed": EVIL,
        "retry_of": EVIL,
        "host": EVIL,
    }
    done = {**row, "number": 1, "state": "COMPLETE", "value": 0.5, "report": EVIL, "failed": EVIL}
    return {
        "study": EVIL,
        "storage": EVIL,
        "objective": EVIL,
        "direction": "maximize",
        "sampler": EVIL,
        "pruner": EVIL,
        "space": [{"name": EVIL}],
        "counts": {EVIL: 1, "PRUNED": 1},
        "best": {**done, "number": EVIL},
        "files": {"best": "best.yaml"},
        "trials": [row, done],
    }


def test_search_html_escapes_every_trial_field_and_forbids_scripts(tmp_path):
    from cnnspec.search.results import write_html

    page_path = tmp_path / "search.html"
    write_html(page_path, hostile_summary(tmp_path))
    page = page_path.read_text(encoding="utf-8")
    assert "<script" not in page.lower() and "<img src=x" not in page
    parser = Tags()
    parser.feed(page)
    allowed = {"html", "head", "meta", "title", "style", "body", "h1", "p", "table", "tr", "th", "td", "a"}
    assert {tag for tag, _ in parser.tags} <= allowed
    for tag, attrs in parser.tags:
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)
    hrefs = [attrs["href"] for tag, attrs in parser.tags if tag == "a"]
    assert hrefs and all(":" not in href for href in hrefs), hrefs  # relative paths only
    policies = [
        a["content"]
        for t, a in parser.tags
        if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert policies == ["default-src 'none'; img-src data:; style-src 'unsafe-inline'"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # shown, as text


def test_a_dangling_symlink_at_the_ask_lock_creates_nothing_where_it_leads(tmp_path):
    from cnnspec.errors import UsageError
    from cnnspec.search.worker import ASK_LOCK, ask_lock

    target = tmp_path / "elsewhere" / "made.txt"
    target.parent.mkdir()
    (tmp_path / ASK_LOCK).symlink_to(target)
    with pytest.raises(UsageError, match="lock file"), ask_lock(tmp_path):
        pass
    assert not target.exists()


@pytest.fixture(scope="module")
def marked_up_search(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Any]:
    """One search of SPEC's one trial, run once for the two tests that read what it prints (each
    trained its own before): into a folder and a study whose names hold Rich markup, over a
    journal whose last line was half written, with ``--workers 3``. Its spec, its --out, and its
    CLI result."""
    from typer.testing import CliRunner

    folder = tmp_path_factory.mktemp("marked")
    spec = folder / "spec.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    out = folder / "[/x]out"  # (the folder `x]out` in the folder `[`)
    out.mkdir(parents=True)
    (out / "study.journal").write_bytes(HALF_WRITTEN)
    pytest.importorskip("optuna")
    from tests.test_search import stand_in_training

    args = ["search", str(spec), "--out", str(out), "--study", "a[/b]", "--workers", "3"]
    # (what it prints is the search's own, whatever a trial learnt)
    with pytest.MonkeyPatch.context() as patch:
        stand_in_training(patch)
        return spec, out, CliRunner().invoke(app, args)


#: The tests of :func:`marked_up_search` run on one xdist worker, which searches once (on two,
#: each searched its own).
MARKED_UP = pytest.mark.xdist_group("search_marked_up")


@pytest.mark.slow
@MARKED_UP
def test_markup_in_the_folder_and_study_names_is_printed_as_text(marked_up_search):
    """Rich reads ``[/x]`` as a closing tag: the repair note, the header, the table's title and
    the best run's folder print such names as they are (a finished search ended in exit 3)."""
    _, out, result = marked_up_search
    assert result.exit_code == 0, result.output
    text = flat(result.output)
    assert f"note: the last line of {out}/study.journal was half written" in text
    assert "study 'a[/b]' in" in text and f"→ {out}" in text
    assert "search a[/b]: 1 trial(s): 1 complete" in text


# -- a folder of the user's as --out ----------------------------------------------------------------
def _users_files(out: Path) -> dict[str, bytes]:
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    (out / "best.yaml").write_text("# my own best.yaml\n")
    (out / "search.html").write_text("<html>mine</html>")
    (out / "search.json").write_text('{"mine": 1}')
    Image.new("RGB", (10, 10), "red").save(out / "history.png")
    return {path.name: path.read_bytes() for path in out.iterdir()}


def test_a_folder_with_files_of_the_users_names_is_refused(runner, write_spec, tmp_path):
    """`search -o DIR` replaced the user's best.yaml, search.json, search.html and history.png
    in any folder but a train run's, exit 0. Now refused before anything is written."""
    out = tmp_path / "mine"
    before = _users_files(out)
    result = search(runner, write_spec, "--out", str(out))
    assert result.exit_code == 2, result.output
    text = flat(result.output)
    assert "has best.yaml, search.json, search.html, history.png, which carry no mark of cnnspec's" in text
    assert "--force" in text and "Traceback" not in text
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before  # no journal either
    (out / "search.json").unlink()
    (out / "search.html").unlink()
    (out / "history.png").unlink()
    one = flat(search(runner, write_spec, "--out", str(out)).output)
    assert "has best.yaml, which carries no mark of cnnspec's" in one


def test_a_searchs_own_summary_files_are_its_own(tmp_path):
    """What a search writes is known as its own: the plots by the search's mark, the page by its
    generator (or an earlier version's head), best.yaml by its header. Beside a search's own
    search.json, a plot with cnnspec's plain mark (an earlier version's) counts too; a page or
    best.yaml of the user's there does not (they were replaced), nor, elsewhere, a picture
    another command drew (a training's history.png)."""
    from PIL import Image

    from cnnspec.analysis.graph import PICTURE_MARK
    from cnnspec.search.results import _EARLIER_PAGE, BEST_HEADER, PAGE_MARK, PLOT_MARK, foreign_summaries

    out = tmp_path / "s"
    out.mkdir()
    Image.new("RGB", (4, 4)).save(out / "history.png", pnginfo=_marked((PICTURE_MARK[0], PLOT_MARK)))
    (out / "search.html").write_text(f"{_EARLIER_PAGE}s</title>")
    (out / "best-other.yaml").write_text(f"{BEST_HEADER}3) of the search 'other'\n")
    (out / "search-other.html").write_text(f'<!doctype html>\n<meta name="generator" content="{PAGE_MARK}">')
    Image.new("RGB", (4, 4)).save(out / "parallel-other.png", pnginfo=_marked(PICTURE_MARK))
    assert foreign_summaries(out) == []
    assert foreign_summaries(out, "-other") == [out / "parallel-other.png"]  # another command's
    (out / "search-other.json").write_text(
        '{"study": "other", "objective": "x", "direction": "maximize", "trials": []}'
    )
    assert foreign_summaries(out, "-other") == []
    (out / "best-other.yaml").write_text("# my own spec, keep me\n")
    (out / "search-other.html").write_text("<html>mine</html>")
    assert foreign_summaries(out, "-other") == [out / "best-other.yaml", out / "search-other.html"]


def test_a_summary_name_that_is_a_folder_is_refused_even_with_force(runner, write_spec, tmp_path):
    """It would be found only after every trial trained (the summary stopped there, exit 2)."""
    from cnnspec.search.results import foreign_summaries

    out = tmp_path / "out"
    (out / "search.json").mkdir(parents=True)
    assert foreign_summaries(out) == [out / "search.json"]
    result = search(runner, write_spec, "--out", str(out), "--force")
    assert result.exit_code == 2, result.output
    assert "search.json in --out to be a file a search can write" in flat(result.output)
    assert sorted(path.name for path in out.iterdir()) == ["search.json"]  # no journal, no trial


def _marked(mark: tuple[str, str]):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text(*mark)
    return info


def test_force_replaces_them_and_the_search_marks_what_it_writes(runner, write_spec, tmp_path, monkeypatch):
    from cnnspec.reporting.images import is_cnnspec_png, png_text
    from cnnspec.search.results import foreign_summaries
    from tests.test_search import stand_in_training

    stand_in_training(monkeypatch)  # (the summaries are the search's own, whatever a trial learnt)
    out = tmp_path / "mine"
    _users_files(out)
    result = search(runner, write_spec, "--out", str(out), "--force")
    assert result.exit_code == 0, result.output
    assert is_cnnspec_png(out / "history.png") and (out / "best.yaml").read_text().startswith("# The best")
    assert png_text(out / "history.png")["Software"] == "cnnspec search"
    (out / "search.json").unlink()  # each file is known by its own mark, too
    assert foreign_summaries(out) == []
    # continued: its own files (checked before any trial runs; none is left to, so none trains)
    again = search(runner, write_spec, "--out", str(out))
    assert again.exit_code == 0, again.output


def test_a_timeout_that_is_no_number_of_seconds_is_refused(runner, write_spec):
    """NaN passed the option's minimum and was then ignored (no deadline ever came)."""
    for value in ("nan", "inf"):
        result = search(runner, write_spec, "--timeout", value)
        assert result.exit_code == 2 and "expected --timeout to be a finite number of seconds" in flat(
            result.output
        )


@pytest.mark.slow
@MARKED_UP
def test_no_more_workers_start_than_trials_are_left(runner, marked_up_search):
    """`--workers 6 -n 1` started six processes for one trial (14 s against 6 s in one). (The
    search of one trial with ``--workers 3`` is the one that prints marked-up names.)"""
    spec, out, result = marked_up_search
    assert result.exit_code == 0, result.output
    assert "--workers 3: 1 trial(s) left to run, so 1 worker(s) started" in flat(result.output)
    # the search again, finished: no trial is left, and none is said to be run
    again = runner.invoke(app, ["search", str(spec), "--out", str(out), "--study", "a[/b]", "--workers", "3"])
    assert again.exit_code == 0, again.output
    assert "--workers 3: no trial left to run" in flat(again.output)
    assert "1 trial(s) left" not in flat(again.output)


def test_a_study_name_that_names_nothing_or_too_much_is_refused(runner, write_spec, tmp_path):
    """``--study ""`` was taken for the spec's own study, silently; a name longer than Optuna's
    database column failed mid-search on PostgreSQL. Both are refused before anything is made."""
    for name, said in (
        ("", "expected --study to name a study; received ''"),
        ("  ", "expected --study to name a study; received '"),
        ("s" * 513, "expected --study to have at most 512 characters; received 513"),
    ):
        out = tmp_path / "out"
        result = search(runner, write_spec, "--out", str(out), "--study", name)
        assert result.exit_code == 2 and said in flat(result.output), result.output
        assert not out.exists()
