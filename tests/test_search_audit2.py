"""``cnnspec search`` audit, second round: storage passwords never printed or written
(:func:`redact`, :func:`scrub`), a ``cnnspec train`` run folder refused as ``--out``, the reason
and trial.json of a trial whose heartbeat stopped, and the space checks (repeated choices, a
step that leaves one value, Optuna's warning about a trimmed range). No TensorFlow: the
functions are called on their own, with an in-memory or SQLite Optuna storage."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import warnings
from pathlib import Path
from typing import Any

import pytest

from cnnspec.analysis.passes import compile_text
from cnnspec.errors import SpecError, UsageError

optuna = pytest.importorskip("optuna")

from tests.test_search_fixes import SPEC as FIXES_SPEC  # noqa: E402

# the tiny spec of tests/test_search_fixes.py, two trials, its space filled in per test
SPEC = FIXES_SPEC.replace("trials: 1", "trials: 2").replace(
    "    drop.rate: {float: [0.0, 0.5]}\n", "    SPACE\n"
)
assert "SPACE" in SPEC


def spec_with(space: str) -> str:
    """SPEC with one ``search.space`` entry (the line ``path: {…}``)."""
    return SPEC.replace("SPACE", space)


def spec_errors(text: str) -> list[Any]:
    with pytest.raises(SpecError) as caught:
        compile_text(text, "s.yaml")
    return caught.value.errors


# -- 1. storage passwords ------------------------------------------------------------------------

LEAKY_URLS = [
    ("postgresql://u:se/cret@h/db", "se/cret", "postgresql://u:***@h/db"),
    ("postgresql://:s3cret@h/db", "s3cret", "postgresql://:***@h/db"),
    (
        "postgresql://u@/postgres?host=/tmp/pg&port=5439&password=s3cret",
        "s3cret",
        "postgresql://u@/postgres?host=/tmp/pg&port=5439&password=***",
    ),
    ("postgresql://u@h/db?PassWord=s3cret&sslmode=require", "s3cret", None),
    ("postgresql://u@h/db?password=s3cret", "s3cret", None),
    ("postgresql://u:pa@ssword@h/db", "ssword", "postgresql://u:***@h/db"),
    ("postgresql://u:a?b/c@h:5432/db", "a?b/c", "postgresql://u:***@h:5432/db"),
    ("mysql+pymysql://u:s3cret@h:3306/db", "s3cret", "mysql+pymysql://u:***@h:3306/db"),
    # an @ in the password, then a / or ? (SQLAlchemy's host, port or database): up to the last @
    (
        "postgresql://bob:p@ss:w/rd@/optuna?host=/tmp/nopg",
        "ss:w/rd",
        "postgresql://bob:***@/optuna?host=/tmp/nopg",
    ),
    ("postgresql://bob:p@ss/word@dbhost/optuna", "ss/word", "postgresql://bob:***@dbhost/optuna"),
    ("postgresql://bob:p@ss?x@dbhost/optuna", "ss?x", "postgresql://bob:***@dbhost/optuna"),
    ("postgresql://u:a/b?k=v@h/db", "a/b?k=v", "postgresql://u:***@h/db"),
]


@pytest.mark.parametrize(("url", "secret", "shown"), LEAKY_URLS)
def test_redact_hides_every_password_of_a_url(url: str, secret: str, shown: str | None) -> None:
    from cnnspec.search.redaction import redact
    from cnnspec.search.study import storage_label

    assert secret not in redact(url)
    assert secret not in storage_label(url, Path("out"))  # search.json's and search.html's "storage"
    if shown is not None:
        assert redact(url) == shown


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u@h:5432/db", "postgresql://u@h:5432/db"),
        # an @ in the query is no userinfo: the socket folder stays as written
        ("postgresql://u:pw@h/db?host=/tmp/a@b", "postgresql://u:***@h/db?host=/tmp/a@b"),
        ("sqlite:////tmp/a@b/study.db", "sqlite:////tmp/a@b/study.db"),
        ("sqlite:////tmp/a:b/study.db", "sqlite:////tmp/a:b/study.db"),
        ("sqlite:///relative/study.db", "sqlite:///relative/study.db"),
        ("runs/x/study.journal", "runs/x/study.journal"),
    ],
)
def test_redact_keeps_what_is_no_password(url: str, shown: str) -> None:
    from cnnspec.search.redaction import redact

    assert redact(url) == shown


def test_an_unreachable_database_error_names_no_password(tmp_path: Path) -> None:
    """The error line of a storage that does not open (the audit: `postgresql://u:se/cret@…`
    printed whole) and the driver's message in it."""
    pytest.importorskip("psycopg2")
    from cnnspec.search.study import open_storage

    for url in (
        "postgresql://u:se/cret@127.0.0.1:9/db",
        "postgresql://:se/cret@127.0.0.1:9/db",
        "postgresql://u@127.0.0.1:9/db?password=se/cret",
    ):
        with pytest.raises(UsageError) as caught:
            open_storage(url, tmp_path)
        text = f"{caught.value} {caught.value.hint}"
        assert "se/cret" not in text and "cret" not in text, text
        assert "cannot open the study storage" in text


def test_a_password_with_an_at_as_written_is_refused_before_the_driver(tmp_path: Path) -> None:
    """SQLAlchemy read `p` as the password, `ss` as the host and `w` as the port: the error
    quoted `ss:w/rd` (`cannot open … postgresql://bob:***@ss:w/rd@/optuna…: … int() …: 'w'`)."""
    from cnnspec.search.study import open_storage

    with pytest.raises(UsageError) as caught:
        open_storage("postgresql://bob:p@ss:w/rd@/optuna?host=/tmp/nopg", tmp_path)
    assert str(caught.value) == (
        "expected the password in --storage to hold no '@' as written; "
        "postgresql://bob:***@/optuna?host=/tmp/nopg has one, which ends the password for SQLAlchemy: "
        "the rest would be read as the host"
    )
    assert caught.value.hint == "write each '@' of the password as %40 (postgresql://user:p%40ss@host/db)"


@pytest.mark.parametrize(
    ("url", "module", "hint"),
    [
        (
            "mysql://u:pw@localhost/db",
            "MySQLdb",
            "pip install mysqlclient (the driver mysqldb of mysql+mysqldb://), or name one that is "
            "installed: mysql+pymysql:// (pip install PyMySQL)",
        ),
        (
            "mysql+pymysql://u@localhost/db",
            "pymysql",
            "pip install PyMySQL (the driver pymysql of mysql+pymysql://)",
        ),
        (
            "postgresql+psycopg2://u@localhost/db",
            "psycopg2",
            "pip install 'cnnspec[search]' (psycopg2 for postgresql://)",
        ),
    ],
)
def test_a_missing_driver_is_named_with_the_package_that_installs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, module: str, hint: str
) -> None:
    """A mysql:// URL was told `pip install 'cnnspec[search]' for postgresql://`."""
    from cnnspec.search.redaction import redact
    from cnnspec.search.study import open_storage

    monkeypatch.setitem(__import__("sys").modules, module, None)  # (its import fails)
    with pytest.raises(UsageError) as caught:
        open_storage(url, tmp_path)
    assert str(caught.value) == (
        f"cannot open the storage {redact(url)}: its database driver {module!r} is not installed"
    )
    assert caught.value.hint == hint


def test_a_drivers_message_is_scrubbed_of_the_password() -> None:
    from cnnspec.search.redaction import scrub

    url = "postgresql://u:pa@ssword@h/db"  # SQLAlchemy's host: "ssword@h"
    message = f'could not translate host name "ssword@h" to address (url {url})'
    assert "ssword" not in scrub(message, url)
    assert "s3cret" not in scrub("see postgresql://u@h/db?password=s3cret", None)


# -- 2. a train run folder as --out ---------------------------------------------------------------


def train_run(folder: Path) -> Path:
    """A folder as ``cnnspec train`` leaves it."""
    folder.mkdir(parents=True)
    for name in ("lock.json", "metrics.json", "history.json"):
        (folder / name).write_text("{}\n")
    (folder / "spec.yaml").write_text("name: x\n")
    (folder / "history.png").write_bytes(b"the run's own curves")
    return folder


def test_a_train_run_folder_is_refused_as_the_search_folder(tmp_path: Path) -> None:
    from cnnspec.search.runner import out_folder
    from cnnspec.search.study import journal_path

    run = train_run(tmp_path / "run")
    before = sorted(p.name for p in run.iterdir())
    for check in (lambda: out_folder(run), lambda: journal_path(None, run)):
        with pytest.raises(UsageError) as caught:
            check()
        assert str(run) in str(caught.value) and "cnnspec train" in str(caught.value)
        assert "another --out" in str(caught.value.hint)
    # a database storage too: journal_path is what the command asks first, before the study
    with pytest.raises(UsageError):
        journal_path("sqlite:///" + str(tmp_path / "s.db"), run)
    assert sorted(p.name for p in run.iterdir()) == before  # nothing written
    assert (run / "history.png").read_bytes() == b"the run's own curves"


def test_a_search_folder_is_still_accepted(tmp_path: Path) -> None:
    """A new folder, and one a search left (its trials are run folders, itself is not)."""
    from cnnspec.search.runner import out_folder
    from cnnspec.search.study import journal_path

    assert out_folder(tmp_path / "new") == tmp_path / "new"
    search = tmp_path / "search"
    (search / "trial-000").mkdir(parents=True)
    (search / "trial-000" / "lock.json").write_text("{}\n")
    for name in ("study.journal", "search.json", "search.html", "history.png", "best.yaml", ".ask.lock"):
        (search / name).write_text("")
    assert out_folder(search) == search
    assert journal_path(None, search) == search / "study.journal"


def test_the_command_refuses_a_train_run_folder_before_writing(runner, write_spec, tmp_path) -> None:
    from cnnspec.cli.app import app

    spec = write_spec(spec_with("drop.rate: {float: [0.0, 0.5]}"))
    run = train_run(tmp_path / "run")
    before = sorted(p.name for p in run.iterdir())
    result = runner.invoke(app, ["search", str(spec), "--out", str(run)])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "run folder of cnnspec train" in text and "Traceback" not in text
    assert sorted(p.name for p in run.iterdir()) == before
    assert (run / "history.png").read_bytes() == b"the run's own curves"


# -- 3. a trial whose heartbeat stopped -----------------------------------------------------------


@pytest.fixture
def stale_study(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A SQLite study with a heartbeat whose grace period is 1 s, and ``stale(n)``: ``n``
    trials that each made their run folder and beat once, as a worker on another machine
    that then died."""
    from cnnspec.search import study as studies

    monkeypatch.setattr(studies, "HEARTBEAT", 1)
    monkeypatch.setattr(studies, "GRACE", 1)
    out = tmp_path / "search"
    out.mkdir()
    space = compile_text(spec_with("drop.rate: {float: [0.0, 0.5]}"), "s.yaml").search
    url = f"sqlite:///{tmp_path / 'study.db'}"
    storage = studies.open_storage(url, out)
    study = studies.create_study(optuna, storage, "tiny_search", space, studies.redact(url))

    def stale(count: int) -> list[Any]:
        trials = []
        for _ in range(count):
            trial = study.ask()
            trial.suggest_float("drop.rate", 0.0, 0.5)
            trial.set_user_attr("values", {"drop.rate": trial.params["drop.rate"]})
            trial.set_user_attr("host", "elsewhere")
            trial.set_user_attr("run_dir", f"trial-{trial.number:03d}")
            (out / f"trial-{trial.number:03d}").mkdir()
            study._storage.record_heartbeat(trial._trial_id)
            trials.append(trial)
        # Their last beats, moved 5 s into the past in Optuna's table: past the grace period, as
        # a worker that died 5 s ago left them (waiting for it on SQLite's whole-second clock
        # took 2.5 s).
        with contextlib.closing(sqlite3.connect(tmp_path / "study.db")) as db, db:
            moved = db.execute("UPDATE trial_heartbeats SET heartbeat = datetime(heartbeat, '-5 seconds')")
            assert moved.rowcount == len(study.trials), "no heartbeat was recorded where expected"
        return trials

    return study, out, stale


def test_a_stale_trial_gets_its_reason_and_trial_json(stale_study) -> None:
    from optuna.trial import TrialState

    from cnnspec.search.results import trial_rows
    from cnnspec.search.worker import counted, fail_stale

    study, out, stale = stale_study
    first, second = stale(2)
    (out / "trial-001" / "trial.json").write_text('{"mine": true}\n')  # the trial's own: kept
    assert sorted(fail_stale(study, out)) == [0, 1]
    trials = study.get_trials(deepcopy=False)
    for trial in (first, second):
        frozen = trials[trial.number]
        assert frozen.state == TrialState.FAIL
        assert frozen.user_attrs["failed"] == "worker died"
    written = json.loads((out / "trial-000" / "trial.json").read_text())
    assert written["failed"] == "worker died" and written["state"] == "FAIL"
    assert written["params"] == first.user_attrs["values"]
    assert json.loads((out / "trial-001" / "trial.json").read_text()) == {"mine": True}
    retries = [t for t in trials if t.state == TrialState.WAITING]
    assert sorted(t.user_attrs["retry_of"] for t in retries) == [0, 1]  # once each, same values
    assert counted(study) == 0  # retried trials spend no budget
    rows = {row["number"]: row for row in trial_rows(study, out)}
    assert rows[0]["failed"] == rows[1]["failed"] == "worker died"


def test_a_trial_optuna_failed_by_itself_shows_why(stale_study) -> None:
    """Failed by Optuna's own sweep (``study.optimize``, an older cnnspec): no ``failed``
    attribute, yet search.json and search.html say why, from the retry it got; its trial.json
    is written by the storage's callback."""
    from optuna.storages import fail_stale_trials

    from cnnspec.search.results import trial_rows

    study, out, stale = stale_study
    stale(1)
    fail_stale_trials(study)
    rows = trial_rows(study, out)
    assert rows[0]["state"] == "FAIL" and rows[0]["failed"] == "worker died"
    assert json.loads((out / "trial-000" / "trial.json").read_text())["failed"] == "worker died"


# -- 4. the search space --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("choices", "repeat"),
    [("[4, 4, 8]", 1), ("[4, 8, 4.0]", 2), ("[1, 8, true]", 2), ("[{a: 1}, {a: 1}]", 1)],
)
def test_a_repeated_choice_is_a_located_error(choices: str, repeat: int) -> None:
    found = spec_errors(spec_with(f"vars.width: {{choice: {choices}}}"))
    assert len(found) == 1, found
    error = found[0]
    assert error.path == f"search.space.vars.width.choice[{repeat}]"
    assert error.loc is not None and error.loc.line == 17
    assert "distinct" in error.message and error.hint


@pytest.mark.parametrize(
    ("space", "kept"),
    [
        ("training.batch_size: {int: [16, 20], step: 32}", "16"),
        ("drop.rate: {float: [0.1, 0.3], step: 0.25}", "0.1"),
    ],
)
def test_a_step_that_leaves_one_value_is_a_located_error(space: str, kept: str) -> None:
    (error,) = spec_errors(spec_with(space))
    assert "leaves only " + kept in error.message
    assert error.loc is not None and (error.loc.line, error.loc.column) == (
        17,
        space.index("step") + 11,
    )  # at the step
    assert "at most" in (error.hint or "")


def test_a_step_that_does_not_divide_the_range_is_trimmed_without_optunas_warning() -> None:
    from cnnspec.search.worker import suggest

    space = compile_text(spec_with("training.batch_size: {int: [16, 24], step: 5}"), "s.yaml").search
    (dimension,) = space.dimensions
    assert dimension.top() == 21
    study = optuna.create_study()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        values = {suggest(study.ask(), dimension) for _ in range(12)}
    assert values <= {16, 21}
    assert [str(w.message) for w in caught] == []
