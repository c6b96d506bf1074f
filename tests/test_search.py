"""``cnnspec search``: trials as run folders, results, continuing a study, workers sharing one
study (journal file, and a throw-away PostgreSQL server), dead workers, and bad input."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from cnnspec.cli.app import app
from tests.conftest import ROOT

optuna = pytest.importorskip("optuna")
CNNSPEC = str(Path(sys.executable).parent / "cnnspec")  # the venv's console script

SPEC = """\
cnnspec: 1
name: tiny_search
input: {shape: [8, 8, 1]}
vars: {width: 4}
model:
  - conv2d: {filters: "${width}", kernel_size: 3, padding: same, activation: relu}
  - global_avg_pool2d
  - {id: drop, dropout: 0.1}
  - dense: {units: 10, activation: softmax}
data: {source: digits, limit: 128}
training:
  epochs: 2
  batch_size: 32
  optimizer: {adam: {learning_rate: 0.01}}
  seed: 1
search:
  trials: 2
  seed: 3
  pruner: none
  space:
    vars.width: {choice: [2, 4]}
    training.optimizer.adam.learning_rate: {float: [0.001, 0.1], log: true}
    drop.rate: {float: [0.0, 0.5]}
"""


def flat(text: str) -> str:
    """Output with Rich's line wrapping undone."""
    return " ".join(text.split())


def load_study(folder: Path, name: str = "tiny_search", storage: str | None = None):
    from cnnspec.search.study import open_storage

    return optuna.load_study(study_name=name, storage=open_storage(storage, folder))


def states(study) -> list[str]:
    return [t.state.name for t in study.get_trials(deepcopy=False)]


def cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """The CLI in a fresh process (worker processes, signals)."""
    return subprocess.run(
        [CNNSPEC, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


# -- bad input: clear errors before anything trains (no TensorFlow) -----------------------------


def test_a_study_with_another_space_under_the_same_name_is_refused(runner, write_spec, tmp_path):
    from cnnspec.analysis.passes import compile_text
    from cnnspec.search.study import create_study, open_storage

    other = compile_text(SPEC.replace("[0.0, 0.5]", "[0.0, 0.4]"), "other.yaml").search
    create_study(optuna, open_storage(None, tmp_path / "out"), "tiny_search", other, "journal")
    result = runner.invoke(app, ["search", str(write_spec(SPEC)), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "was started with another search space" in flat(result.output)
    assert "--study" in flat(result.output)
    assert not list((tmp_path / "out").glob("trial-*"))


def test_a_damaged_journal_is_a_clear_error_and_left_as_it_was(runner, write_spec, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    damaged = b'{"op_code": 0, "worker_id": "w", "study_name": "x", "directions": [1]}\nnot json at all\n'
    (out / "study.journal").write_bytes(damaged)
    result = runner.invoke(app, ["search", str(write_spec(SPEC)), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "is damaged at line 2 and cannot be read" in flat(result.output)
    assert "Traceback" not in flat(result.output)
    assert (out / "study.journal").read_bytes() == damaged


def test_an_unreachable_storage_url_is_a_clear_error(runner, write_spec, tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://user:secret@127.0.0.1:{port}/nowhere"
    result = runner.invoke(
        app, ["search", str(write_spec(SPEC)), "--out", str(tmp_path / "o"), "--storage", url]
    )
    assert result.exit_code == 2, result.output
    assert "cannot open the study storage" in flat(result.output)
    assert "check that the database server runs" in flat(result.output)
    assert "secret" not in flat(result.output)  # the password is never printed
    assert "Traceback" not in flat(result.output)
    assert not (tmp_path / "o").exists()  # no empty search folder left behind


class _DriverError(Exception):
    """A DB-API error as psycopg2 raises it: its SQLSTATE in ``pgcode``."""

    def __init__(self, text: str, pgcode: str | None) -> None:
        super().__init__(text)
        self.pgcode = pgcode


@pytest.mark.parametrize(
    ("wrapper", "text", "state", "lost"),
    [
        ("ProgrammingError", 'relation "studies" already exists', "42P07", True),
        ("IntegrityError", "duplicate key value violates unique constraint", "23505", True),
        ("OperationalError", "deadlock detected", "40P01", True),
        ("OperationalError", "table studies already exists", None, True),  # SQLite names no state
        ("OperationalError", "connection refused", None, False),
        ("ProgrammingError", "permission denied for schema public", "42501", False),
        ("IntegrityError", 'null value in column "study_name" violates not-null constraint', "23502", False),
    ],
)
def test_only_a_lost_race_to_create_the_tables_is_retried(wrapper, text, state, lost):
    import sqlalchemy.exc

    from cnnspec.search.study import lost_schema_race

    error = getattr(sqlalchemy.exc, wrapper)("CREATE TABLE studies (...)", {}, _DriverError(text, state))
    assert lost_schema_race(error) is lost


def test_a_spec_without_a_search_section_is_a_usage_error(runner, write_spec, tmp_path):
    path = write_spec(SPEC.split("search:")[0])
    result = runner.invoke(app, ["search", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "expected a search: section" in flat(result.output)


def test_the_grid_sampler_visits_each_point_once_by_ask_and_tell():
    from cnnspec.analysis.passes import compile_text
    from cnnspec.search.study import grid_size, make_sampler
    from cnnspec.search.worker import suggest

    text = SPEC.replace("pruner: none", "pruner: none\n  sampler: grid").replace(
        "{float: [0.001, 0.1], log: true}", "{choice: [0.001, 0.01]}"
    )
    space = compile_text(
        text.replace("{float: [0.0, 0.5]}", "{float: [0.0, 0.5], step: 0.25}"), "g.yaml"
    ).search
    assert grid_size(space) == 2 * 2 * 3
    study = optuna.create_study(sampler=make_sampler(optuna, space, 0), direction="maximize")
    seen = set()
    for _ in range(grid_size(space)):
        trial = study.ask()
        seen.add(tuple(suggest(trial, d) for d in space.dimensions))
        study.tell(trial, 0.5)  # Optuna's own grid sampler raises here after the last point
    assert len(seen) == 12


def test_a_sqlite_file_that_cannot_be_opened_is_a_clear_error_and_leaves_no_folder(
    runner, write_spec, tmp_path
):
    out = tmp_path / "o"
    url = f"sqlite:///{tmp_path}/missing/dir/x.db"
    result = runner.invoke(
        app, ["search", str(write_spec(SPEC)), "--out", str(out), "--storage", url, "-n", "1"]
    )
    assert result.exit_code == 2, result.output
    text = flat(result.output)
    assert "cannot open the study storage" in text and "unable to open database file" in text
    assert f"the folder of the database file ({tmp_path}/missing/dir) must exist and be writable" in text
    assert "database server" not in text  # SQLite has none
    assert not out.exists()  # nothing left behind


def fake_trials(monkeypatch, value=lambda params: 0.5):
    """``run_worker`` without TensorFlow: each trial suggests its values and is told ``value``."""
    from cnnspec.search import worker

    def run_trial(cfg, compiled, space, study, trial):
        values = {d.name: worker.suggest(trial, d) for d in space.dimensions}
        study.tell(trial, value(values))
        return f"trial {trial.number}"

    monkeypatch.setattr(worker, "run_trial", run_trial)
    monkeypatch.setattr(worker, "_quiet_tensorflow", lambda: None)


def run_fake_search(spec: Path, out: Path, trials: int, **options) -> None:
    from cnnspec.search.runner import out_folder
    from cnnspec.search.worker import WorkerConfig, run_worker

    out_folder(out)
    assert (
        run_worker(
            WorkerConfig(spec=spec, out=out, study_name="tiny_search", trials=trials, quiet=True, **options)
        )
        == 0
    )


def params_of(out: Path, storage: str | None = None) -> list[tuple]:
    trials = load_study(out, storage=storage).get_trials()
    assert all(t.state.name == "COMPLETE" for t in trials), states(load_study(out, storage=storage))
    return [tuple(sorted(t.params.items())) for t in trials]


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_a_continued_study_draws_new_values_and_the_same_history_the_same_ones(
    monkeypatch, write_spec, tmp_path, sampler
):
    """The sampler's seed: the section's, the worker's index and the trials already in the study.
    With the seed alone, every re-run (and a worker replacing a dead one) replayed the start."""
    fake_trials(monkeypatch, value=lambda params: params["drop.rate"])
    spec = write_spec(SPEC.replace("pruner: none", f"pruner: none\n  sampler: {sampler}"))
    found = []
    for out in (tmp_path / "a", tmp_path / "b"):
        for total in (3, 5, 7):  # the same command three times, each continuing the study
            run_fake_search(spec, out, total)
        run_fake_search(spec, out, 8, index=1)  # a second worker joins later
        params = params_of(out)
        assert len(params) == 8 and len(set(params)) == 8, params  # no trial repeats another
        found.append(params)
    assert found[0] == found[1]  # a seeded search with the same history draws the same values


def test_a_workers_trial_on_a_database_prints_no_optuna_heartbeat_warning(monkeypatch, write_spec, tmp_path):
    import warnings

    fake_trials(monkeypatch)
    out = tmp_path / "o"
    url = f"sqlite:///{tmp_path}/study.db"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_fake_search(write_spec(SPEC), out, 2, storage=url)
        warnings.warn("another warning", UserWarning, stacklevel=1)  # the filter is narrow: others still show
    shown = [str(w.message) for w in caught]
    assert not [m for m in shown if "Heartbeat" in m], shown
    assert "another warning" in shown
    assert len(params_of(out, url)) == 2


def test_the_leaderboard_title_counts_what_the_table_shows(capsys):
    from cnnspec.cli.search import leaderboard

    def row(number, state, value):
        return {
            "number": number,
            "state": state,
            "value": value,
            "params": {"x": 1},
            "epochs": 1,
            "run_dir": None,
        }

    rows = [
        row(0, "COMPLETE", 0.9),
        {**row(1, "FAIL", None), "failed": "worker died"},
        row(2, "WAITING", None),
    ]
    summary = {
        "study": "s",
        "direction": "maximize",
        "objective": "val_accuracy",
        "space": [{"name": "x"}],
        "trials": rows,
        "counts": {"COMPLETE": 1, "FAIL": 1, "WAITING": 1},  # as search.json counts them
        "best": {**rows[0], "run_dir": "trial-000"},
        "files": {"best": "best.yaml"},
    }
    leaderboard(summary)
    text = flat(capsys.readouterr().out)
    assert "search s: 3 trial(s): 1 complete, 1 failed, 1 waiting" in text
    assert "best 3 of 3" not in text
    assert "fail: worker died" in text  # why a trial failed (was "fail" only)
    long = {**rows[1], "failed": "the disk is full:\n" + "x" * 100}
    leaderboard({**summary, "trials": [rows[0], long]})
    assert "fail: the disk is full: " + "x" * 21 + "…" in flat(capsys.readouterr().out)
    leaderboard({**summary, "trials": rows * 4, "counts": {"COMPLETE": 4, "FAIL": 4, "WAITING": 4}}, top=10)
    assert "12 trial(s): 4 complete, 4 failed, 4 waiting; the best 10 shown" in flat(capsys.readouterr().out)


def test_a_study_continued_with_other_overrides_or_another_spec_is_refused(runner, write_spec, tmp_path):
    from cnnspec.analysis.passes import compile_text
    from cnnspec.search.study import create_study, open_storage, trial_meaning

    out = tmp_path / "out"
    started = compile_text(SPEC, "spec.yaml", ["training.epochs=1"])
    meaning = trial_meaning(started.doc, started.search, ["training.epochs=1"])
    create_study(optuna, open_storage(None, out), "tiny_search", started.search, "journal", meaning)
    # the same again (another process, or the same command re-run) continues it
    create_study(optuna, open_storage(None, out), "tiny_search", started.search, "journal", meaning)
    # a --set of a searched path, or one that sets what the spec says, changes nothing
    same = compile_text(SPEC, "spec.yaml", ["training.epochs=1", "vars.width=2", "training.batch_size=32"])
    again = trial_meaning(
        same.doc, same.search, ["training.epochs=1", "vars.width=2", "training.batch_size=32"]
    )
    assert again["sections"] == meaning["sections"]
    # how one machine runs it (the machines of one study may differ) changes nothing either
    elsewhere = compile_text(SPEC, "spec.yaml", ["training.epochs=1", "runtime.jit_compile=false"])
    assert trial_meaning(elsewhere.doc, elsewhere.search, [])["sections"] == meaning["sections"]

    spec = write_spec(SPEC)
    result = runner.invoke(app, ["search", str(spec), "--out", str(out), "--set", "training.epochs=3"])
    assert result.exit_code == 2, result.output
    text = flat(result.output)
    assert "was started with another spec or other --set overrides" in text
    assert "differs in: the spec's training" in text
    assert "--set was --set training.epochs=1, now --set training.epochs=3" in text
    assert "--study" in text and "--out" in text
    assert not list(out.glob("trial-*"))

    spec.write_text(SPEC.replace("width: 4}", "width: 4, depth: 2}").replace("epochs: 2", "epochs: 1"))
    edited = runner.invoke(app, ["search", str(spec), "--out", str(out)])  # the file edited instead
    assert edited.exit_code == 2, edited.output
    assert "differs in: the spec's vars" in flat(edited.output)
    assert "--set was --set training.epochs=1, now no --set" in flat(edited.output)


# -- trials, results, continuing ----------------------------------------------------------------


@pytest.mark.slow
def test_search_writes_trial_run_folders_and_results_and_continues(runner, write_spec, tmp_path):
    spec = write_spec(SPEC)
    out = tmp_path / "search"
    # one trial, then continued to two: every trial trains for real (about 1.5 s each)
    result = runner.invoke(app, ["search", str(spec), "--out", str(out), "--trials", "1"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "search.json").read_text())
    assert [t["state"] for t in summary["trials"]] == ["COMPLETE"]
    for trial in summary["trials"]:
        folder = out / trial["run_dir"]
        assert folder.name == f"trial-{trial['number']:03d}"
        for name in ("spec.yaml", "resolved.yaml", "metrics.json", "report.html", "trial.json", "lock.json"):
            assert (folder / name).is_file(), name
        written = yaml.safe_load((folder / "spec.yaml").read_text())
        assert "search" not in written
        assert written["vars"]["width"] == trial["params"]["vars.width"]
        assert written["model"][2]["dropout"] == pytest.approx(trial["params"]["drop.rate"])
        history = json.loads((folder / "history.json").read_text())
        assert trial["value"] == pytest.approx(max(history["val_accuracy"]))  # the best epoch
    best = summary["best"]
    assert best["value"] == max(t["value"] for t in summary["trials"])
    best_spec = yaml.safe_load((out / "best.yaml").read_text())
    assert "search" not in best_spec
    assert best_spec["training"]["optimizer"]["adam"]["learning_rate"] == pytest.approx(
        best["params"]["training.optimizer.adam.learning_rate"]
    )
    page = (out / "search.html").read_text()
    assert 'href="trial-000/report.html"' in page and "data:image/png;base64," in page
    assert 'src="http' not in page
    assert (out / "history.png").is_file()
    assert "search tiny_search" in flat(result.output)  # the leaderboard

    again = runner.invoke(app, ["search", str(spec), "--out", str(out), "--trials", "2"])
    assert again.exit_code == 0, again.output
    summary2 = json.loads((out / "search.json").read_text())
    assert [t["number"] for t in summary2["trials"]] == [0, 1]
    assert summary2["trials"][:1] == [
        {**t, "seconds": summary2["trials"][i]["seconds"]} for i, t in enumerate(summary["trials"])
    ]
    assert (out / "trial-001" / "metrics.json").is_file()
    assert summary2["trials"][1]["params"] not in [t["params"] for t in summary["trials"]]  # new values
    assert summary2["best"]["value"] == max(t["value"] for t in summary2["trials"])
    assert 'href="trial-001/report.html"' in (out / "search.html").read_text()
    # (best.yaml trained again: test_best_yaml_trains_the_best_trial_again_from_another_folder)


def stand_in_training(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """``train`` of a trial without TensorFlow (the search's own path, from asking the trial to
    recording its result, runs as it is): it finishes with accuracy 0.5. The run folders it
    trained, in turn. For the tests of what a search does with a dead worker's trial, which a
    real training proves nothing more of (its run is test_search_writes_trial_run_folders_…)."""
    from cnnspec.search import worker
    from cnnspec.training import trainer

    class Pruning:
        pruned_at = None

    trained: list[Path] = []

    def train(compiled: Any, *, out: Path, **_: Any) -> Any:
        trained.append(out)
        return trainer.TrainResult(out, {"test_accuracy": 0.5}, [{"val_accuracy": 0.5}], {})

    monkeypatch.setattr(trainer, "train", train)
    monkeypatch.setattr(worker, "_quiet_tensorflow", lambda: None)
    monkeypatch.setattr(worker, "pruning_callback", lambda trial, metric: Pruning())
    return trained


def test_a_dead_workers_trial_is_failed_and_retried_once_with_its_values(
    runner, write_spec, tmp_path, monkeypatch
):
    from cnnspec.analysis.passes import compile_text
    from cnnspec.search.study import create_study, open_storage

    out = tmp_path / "search"
    space = compile_text(SPEC, "spec.yaml").search
    study = create_study(optuna, open_storage(None, out), "tiny_search", space, "journal")
    dead = subprocess.Popen(["true"])
    dead.wait()  # a PID that no longer runs: the worker that asked this trial was SIGKILLed
    trial = study.ask({"vars.width": optuna.distributions.CategoricalDistribution([2, 4])})
    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("pid", dead.pid)
    trained = stand_in_training(monkeypatch)
    result = runner.invoke(app, ["search", str(write_spec(SPEC)), "--out", str(out), "--trials", "1"])
    assert result.exit_code == 0, result.output
    assert "worker that died" in flat(result.output)
    trials = load_study(out).get_trials()
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE"]
    assert trials[0].user_attrs["failed"] == "worker died"
    assert trials[1].user_attrs["retry_of"] == 0
    assert trials[1].params["vars.width"] == trials[0].params["vars.width"]
    assert trained == [out / "trial-001"]  # (the retry trained, once)


def test_a_trial_whose_worker_pid_was_reused_is_failed_and_retried(runner, write_spec, tmp_path, monkeypatch):
    """A PID that runs again as another process (after a reboot, or PID 1 of a container
    started again) is no live worker: the process identity it recorded differs."""
    from cnnspec.analysis.passes import compile_text
    from cnnspec.search.study import create_study, open_storage
    from cnnspec.search.worker import process_identity

    out = tmp_path / "search"
    space = compile_text(SPEC, "spec.yaml").search
    study = create_study(optuna, open_storage(None, out), "tiny_search", space, "journal")
    trial = study.ask({"vars.width": optuna.distributions.CategoricalDistribution([2, 4])})
    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("pid", os.getpid())  # alive, but not the process that asked the trial
    trial.set_user_attr("process", "another-boot:1")
    trained = stand_in_training(monkeypatch)
    result = runner.invoke(app, ["search", str(write_spec(SPEC)), "--out", str(out), "--trials", "1"])
    assert result.exit_code == 0, result.output
    trials = load_study(out).get_trials()
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE"]
    assert trials[0].user_attrs["failed"] == "worker died"
    assert trials[1].user_attrs["process"] == process_identity(os.getpid())  # (this process ran it)
    assert trained == [out / "trial-001"]  # (the retry trained, once)


# -- several workers on one study -------------------------------------------------------------


def check_shared(study, folders: list[Path], expected: int, extra: int = 0) -> None:
    """Every trial finished (none lost or left running), each has its run folder with results,
    and more than one process ran them."""
    trials = study.get_trials()
    assert expected <= len(trials) <= expected + extra, states(study)
    assert all(t.state.name == "COMPLETE" for t in trials), states(study)
    assert [t.number for t in trials] == list(range(len(trials)))
    for t in trials:
        found = [f / t.user_attrs["run_dir"] for f in folders if (f / t.user_attrs["run_dir"]).is_dir()]
        assert len(found) == 1 and (found[0] / "metrics.json").is_file(), t.number
    assert len({t.user_attrs["pid"] for t in trials}) >= 2


@pytest.mark.slow
# a runner and two TensorFlow workers (about 60 s of CPU): part of `make test-multiworker` (in
# `make test-full`), not of `make test`'s 10 minutes. In `make test`, --workers 2 still starts its
# workers in test_a_signal_as_the_workers_start_stops_every_worker, and two processes complete a
# shared study in test_search_postgres.
@pytest.mark.skipif(
    not os.environ.get("CNNSPEC_MULTIWORKER"),
    reason="two search workers sharing a journal study run in `make test-multiworker` (make test-full)",
)
def test_two_worker_processes_share_a_journal_study(write_spec, tmp_path):
    out = tmp_path / "search"
    done = cli("search", str(write_spec(SPEC)), "--out", str(out), "--workers", "2", "--trials", "4", "-q")
    assert done.returncode == 0, done.stdout + done.stderr
    check_shared(load_study(out), [out], 4)
    assert len(json.loads((out / "search.json").read_text())["trials"]) == 4


def wait_for(condition, what: str, proc: subprocess.Popen, timeout: float = 300):
    """Poll ``condition()`` until it returns something truthy (the search must still run)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = condition()
        if found:
            return found
        if proc.poll() is not None:
            raise AssertionError(f"the search ended ({proc.returncode}) before {what}: {proc.communicate()}")
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def start_search(*args: str) -> subprocess.Popen:
    """``cnnspec search`` in a session of its own, with SIGINT *ignored* as a search started in
    the background of a script inherits it (the runner must still stop on ``kill -INT``)."""
    return subprocess.Popen(
        ["sh", "-c", 'trap "" INT; exec "$@"', "sh", CNNSPEC, "search", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def in_session(sid: int, command: str = "") -> list[int]:
    """The live processes of a session whose command line has ``command``: the runner and its
    workers (each in a process group of its own, but all in the runner's session)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z" and command in line:
            found.append(int(entry.name))
    return found


def kill_session(proc: subprocess.Popen) -> None:
    """Whatever a failed test left of a search (no orphaned workers training on)."""
    if proc.poll() is None:
        proc.kill()
    for pid in in_session(proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait()


def running(out: Path) -> list:
    if not (out / "study.journal").is_file():
        return []
    try:
        trials = load_study(out).get_trials()
    except Exception:  # the parent has not created the study yet
        return []
    training = [t for t in trials if t.state.name == "RUNNING" and "run_dir" in t.user_attrs]
    return [t for t in training if (out / t.user_attrs["run_dir"] / "lock.json").is_file()]


@pytest.mark.slow
# several TensorFlow worker processes: never beside the other multi-process tests of group
# "workers" on 2 cores, where their timeouts (a stalled worker is the failure) would be load
@pytest.mark.xdist_group("workers")
# two TensorFlow workers training until one is killed and its retry trains (about 35 s of test
# time): part of `make test-multiworker` (in `make test-full`), not of `make test`'s 10 minutes
@pytest.mark.skipif(
    not os.environ.get("CNNSPEC_MULTIWORKER"),
    reason="a search losing a worker runs in `make test-multiworker` (make test-full)",
)
def test_a_killed_worker_loses_only_its_trial_and_ctrl_c_stops_cleanly(runner, write_spec, tmp_path):
    spec = write_spec(SPEC)
    out = tmp_path / "search"
    args = [str(spec), "--out", str(out), "--workers", "2", "--trials", "3", "-q"]
    proc = start_search(*args, "--set", "training.epochs=5000")
    try:
        both = wait_for(
            lambda: (found := running(out)) and len(found) == 2 and found, "two trials train", proc
        )
        victim = both[0]
        os.kill(victim.user_attrs["pid"], signal.SIGKILL)
        retry = wait_for(
            lambda: [t for t in running(out) if t.user_attrs.get("retry_of") == victim.number],
            "the retry trains",
            proc,
        )[0]
        assert retry.params == victim.params
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        output = proc.communicate(timeout=300)[0]
    finally:
        kill_session(proc)
    assert proc.returncode == 130, output
    assert "interrupted" in flat(output) and "Traceback" not in output
    trials = {t.number: t for t in load_study(out).get_trials()}
    assert trials[victim.number].state.name == "FAIL"
    assert trials[victim.number].user_attrs["failed"] == "worker died"
    interrupted = [t for t in trials.values() if "stopped" in t.user_attrs]  # (stopped, not failed)
    assert not [t for t in interrupted if "failed" in t.user_attrs]
    assert {t.number for t in interrupted} == {both[1].number, retry.number}
    waiting = [t for t in trials.values() if t.state.name == "WAITING"]
    assert sorted(t.user_attrs["retry_of"] for t in waiting) == sorted(t.number for t in interrupted)
    assert json.loads((out / "search.json").read_text())["trials"]

    # the rest trains 1 epoch, not 5000: a test's shortcut past the refusal of a study continued
    # with other --set overrides (test_a_study_continued_with_other_overrides_or_another_spec_is_refused)
    from cnnspec.analysis.passes import compile_spec
    from cnnspec.search.study import MEANING_ATTR, trial_meaning

    shorter = compile_spec(spec, ["training.epochs=1"])
    load_study(out).set_user_attr(
        MEANING_ATTR, trial_meaning(shorter.doc, shorter.search, ["training.epochs=1"])
    )
    # in this process with one worker: the retries only need to run, and a fresh runner with two
    # TensorFlow workers cost three times the CPU (the workers above proved the processes)
    rest = ["search", str(spec), "--out", str(out), "--trials", "3", "-q", "--set", "training.epochs=1"]
    done = runner.invoke(app, rest)
    assert done.exit_code == 0, done.output
    final = load_study(out).get_trials()
    complete = [t for t in final if t.state.name == "COMPLETE"]
    assert len(complete) == 3 and not [t for t in final if t.state.name in ("RUNNING", "WAITING")]
    retried = {t.user_attrs.get("retry_of") for t in complete}
    assert {t.number for t in interrupted} <= retried  # both interrupted trials ran again, same values


@pytest.mark.slow
@pytest.mark.xdist_group("workers")
@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda n: n.name)
def test_a_signal_as_the_workers_start_stops_every_worker(write_spec, tmp_path, number):
    """Ctrl-C or SIGTERM while the workers start up: the search ends (130, no traceback) and so
    do they; the runner killed: its workers stop by themselves (nobody else would)."""
    out = tmp_path / "search"
    proc = start_search(
        str(write_spec(SPEC)), "--out", str(out), "--workers", "2", "--set", "training.epochs=5000"
    )
    try:
        wait_for(lambda: len(in_session(proc.pid, "spawn_main")) == 2, "two workers start", proc, timeout=120)
        proc.send_signal(number)
        output = proc.communicate(timeout=120)[0]  # the end of the output: the workers are gone too
        deadline = time.time() + 30
        while in_session(proc.pid) and time.time() < deadline:
            time.sleep(0.2)
        assert not in_session(proc.pid), "processes of the search outlived it"
    finally:
        kill_session(proc)
    assert "Traceback" not in output
    assert proc.returncode == (-signal.SIGKILL if number == signal.SIGKILL else 130), output


def test_a_trial_interrupted_after_its_results_were_written_counts_as_finished(tmp_path):
    """A Ctrl-C once a trial had trained all its epochs and written metrics.json (during its
    report) marked it failed "interrupted": its run was trained again."""
    from cnnspec.search.worker import finished_run

    run = tmp_path / "trial-000"
    run.mkdir()
    history = {"epoch": [1, 2], "loss": [0.9, 0.5], "val_accuracy": [0.6, None]}
    (run / "history.json").write_text(json.dumps(history))
    (run / "metrics.json").write_text(json.dumps({"epochs_run": 2, "test_accuracy": 0.8}))
    assert finished_run(run) is None  # no model.keras: the training did not finish
    (run / "model.keras").write_bytes(b"a model")
    rows, metrics = finished_run(run)
    assert rows == [{"epoch": 1.0, "loss": 0.9, "val_accuracy": 0.6}, {"epoch": 2.0, "loss": 0.5}]
    assert metrics["test_accuracy"] == 0.8
    (run / "metrics.json").write_text(json.dumps({"epochs_run": 3}))  # history and metrics disagree
    assert finished_run(run) is None


@pytest.mark.slow
def test_ctrl_c_during_a_finished_trials_report_keeps_its_result(runner, write_spec, tmp_path, monkeypatch):
    from cnnspec.reporting import html

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # as a Ctrl-C lands while the report is written

    monkeypatch.setattr(html, "write_report", interrupted)
    out = tmp_path / "out"
    args = ["search", str(write_spec(SPEC)), "--out", str(out), "--trials", "1", "--workers", "1"]
    result = runner.invoke(app, [*args, "--set", "training.epochs=1"])
    assert result.exit_code == 130, result.output
    trial = json.loads((out / "trial-000" / "trial.json").read_text())
    assert trial["state"] == "COMPLETE" and trial["value"] is not None, trial


@pytest.mark.parametrize("seed", [None, 3])
def test_two_workers_and_a_continued_grid_search_visit_each_point_once(seed):
    """With a seed, each worker's sampler (and a continued search's) shuffled the grid its own
    way while Optuna gives trial n the n-th point: points ran twice, others never."""
    from cnnspec.analysis.passes import compile_text
    from cnnspec.search.study import grid_size, make_sampler
    from cnnspec.search.worker import suggest

    text = SPEC.replace("pruner: none", "pruner: none\n  sampler: grid").replace(
        "{float: [0.001, 0.1], log: true}", "{choice: [0.001, 0.01]}"
    )
    assert "\n  seed: 3\n" in text  # (the search section's)
    if seed is None:
        text = text.replace("\n  seed: 3\n", "\n")
    space = compile_text(
        text.replace("{float: [0.0, 0.5]}", "{float: [0.0, 0.5], step: 0.25}"), "g.yaml"
    ).search
    storage = optuna.storages.InMemoryStorage()
    workers = [
        optuna.create_study(
            storage=storage,
            study_name="g",
            sampler=make_sampler(optuna, space, w),
            direction="maximize",
            load_if_exists=True,
        )
        for w in range(2)
    ]
    seen = []
    for index in range(grid_size(space)):
        study = (
            workers[index % 2]
            if index < 6
            else optuna.load_study(
                study_name="g", storage=storage, sampler=make_sampler(optuna, space, 0, existing=6)
            )
        )  # the last half: a continued search, its sampler made when 6 trials were there
        trial = study.ask()
        seen.append(tuple(suggest(trial, d) for d in space.dimensions))
        study.tell(trial, 0.5)
    assert len(set(seen)) == len(seen) == 12


def test_hyperbands_budget_is_the_most_epochs_a_trial_trains():
    """It read the spec's training.epochs alone, not a searched one."""
    from cnnspec.analysis.passes import compile_text
    from cnnspec.search.study import make_pruner

    text = SPEC.replace("pruner: none", "pruner: hyperband")
    assert "training.epochs" not in text
    text = text.replace("space:\n", "space:\n    training.epochs: {int: [2, 12]}\n", 1)
    space = compile_text(text, "h.yaml").search
    pruner = make_pruner(optuna, space, 3)
    assert pruner._max_resource == 12


@pytest.mark.slow
def test_best_yaml_trains_the_best_trial_again_from_another_folder(runner, tmp_path, monkeypatch):
    """best.yaml kept `npz: ${dfile}` (read as OUT/d.npz) and no seed (each trial had drawn its
    own, and its own validation split): `cnnspec train OUT/best.yaml` trained something else."""
    import numpy as np

    folder = tmp_path / "ex"
    folder.mkdir()
    rng = np.random.default_rng(0)
    arrays = {
        f"x_{part}": rng.random((n, 8, 8, 1), dtype=np.float32) for part, n in (("train", 48), ("test", 16))
    }
    arrays.update(y_train=np.arange(48) % 10, y_test=np.arange(16) % 10)
    np.savez(folder / "d.npz", **arrays)
    text = (
        SPEC.replace("vars: {width: 4}", "vars: {width: 4, dfile: d.npz}")
        .replace(
            "data: {source: digits, limit: 128}", 'data: {source: {npz: "${dfile}"}, validation_split: 0.25}'
        )
        .replace("  epochs: 2\n", "  epochs: 1\n")
        .replace("  seed: 1\n", "")
        .replace("  trials: 2\n", "  trials: 1\n")
    )
    (folder / "x.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    done = runner.invoke(app, ["search", "ex/x.yaml", "--out", "out", "--no-report"])
    assert done.exit_code == 0, done.output
    seed = json.loads((tmp_path / "out" / "search.json").read_text())["training_seed"]
    assert f"no training.seed: every trial trains with the study's seed {seed}" in flat(done.output)
    assert json.loads((tmp_path / "out" / "trial-000" / "lock.json").read_text())["seed"] == seed
    best = yaml.safe_load((tmp_path / "out" / "best.yaml").read_text())
    assert best["data"]["source"]["npz"] == str(folder / "d.npz") and best["training"]["seed"] == seed
    monkeypatch.chdir(tmp_path / "out")  # (best.yaml is taken as it is from anywhere)
    trained = runner.invoke(app, ["train", "best.yaml", "--out", str(tmp_path / "b"), "-q", "--no-report"])
    assert trained.exit_code == 0, trained.output
    assert json.loads((tmp_path / "b" / "lock.json").read_text())["seed"] == seed
    first = json.loads((tmp_path / "out" / "trial-000" / "history.json").read_text())
    again = json.loads((tmp_path / "b" / "history.json").read_text())
    assert again["val_accuracy"] == pytest.approx(first["val_accuracy"])  # the same split, the same run
