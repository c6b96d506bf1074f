"""A database storage that fails under a running trial (its server stopped: the pruning
report's commit fails) stops the search with the database's own words and the hint to run it
again (exit 2); the trial is not failed for it ("StorageInternalError: … invalid data in the
commit", and a trial.json saying FAIL while the study still held it running). The same command
afterwards trains the trial again. Fast: a stand-in training on a SQLite storage (no TensorFlow,
no server)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.test_search_fixes import SPEC, flat, search


def lost_server() -> Exception:
    """What Optuna raises when a commit meets a server gone: its wrapper, from SQLAlchemy's."""
    import sqlalchemy.exc
    from optuna.exceptions import StorageInternalError

    try:
        try:
            raise sqlalchemy.exc.OperationalError(
                "INSERT …", {}, Exception('connection to server on socket "/tmp/s/.s.PGSQL.5432" failed')
            )
        except sqlalchemy.exc.SQLAlchemyError as exc:
            raise StorageInternalError(
                "An exception is raised during the commit. This typically happens due to invalid "
                "data in the commit, e.g. exceeding max length. "
            ) from exc
    except StorageInternalError as wrapped:
        return wrapped


def test_a_database_lost_under_a_trial_stops_the_search_and_the_rerun_trains_it_again(
    runner: Any, write_spec: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("optuna")
    import optuna

    from cnnspec.search import worker
    from cnnspec.training import trainer

    class Pruning:
        pruned_at = None

    calls: list[Path] = []

    def train(compiled: Any, *, out: Path, **_: Any) -> Any:
        calls.append(out)
        if len(calls) == 1:  # the server stops while the first trial trains
            raise lost_server()
        return trainer.TrainResult(out, {"test_accuracy": 0.5}, [{"val_accuracy": 0.5}], {})

    monkeypatch.setattr(trainer, "train", train)
    monkeypatch.setattr(worker, "_quiet_tensorflow", lambda: None)
    monkeypatch.setattr(worker, "pruning_callback", lambda trial, metric: Pruning())
    spec, out = write_spec(SPEC), tmp_path / "out"
    url = f"sqlite:///{tmp_path / 'study.db'}"
    first = search(runner, spec, out, "--storage", url)
    text = flat(first.output)
    assert first.exit_code == 2, first.output
    # (the database's words: psycopg2's would say `(psycopg2.OperationalError) connection …`)
    said = 'failed: (builtins.Exception) connection to server on socket "/tmp/s/.s.PGSQL.5432" failed'
    assert f"error: the study storage {url} {said}" in text
    assert "then run the same command again: the study goes on" in text
    assert "invalid data" not in text and "Traceback" not in text and "internal error" not in text
    trial_json = out / "trial-000" / "trial.json"
    assert not trial_json.exists() or json.loads(trial_json.read_text()).get("state") != "FAIL"
    study = optuna.load_study(study_name="tiny_search", storage=url)
    assert [t.state.name for t in study.trials] == ["RUNNING"]  # what the study holds: no FAIL said

    monkeypatch.setattr(worker, "_alive", lambda pid, identity=None: False)  # (that search has ended)
    again = search(runner, spec, out, "--storage", url)
    assert again.exit_code == 0, again.output
    assert len(calls) == 2
    summary = json.loads((out / "search.json").read_text())
    assert [row["state"] for row in summary["trials"]][-1] == "COMPLETE"


def test_other_errors_of_a_trial_still_fail_only_that_trial() -> None:
    pytest.importorskip("optuna")
    from cnnspec.search import study as studies

    assert studies.database_failure(lost_server())
    assert not studies.database_failure(ValueError("a training's own error"))
    assert not studies.database_failure(OSError(28, "No space left on device"))
    lost = studies.database_lost(lost_server(), "postgresql://u:secret@/db?host=/tmp/s")
    assert "secret" not in str(lost) and "connection to server" in str(lost)
