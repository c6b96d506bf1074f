"""``cnnspec search`` against a real database: a throw-away PostgreSQL server (initdb + pg_ctl on a
Unix socket in a temp folder, no system service), two workers on one study. Skipped where the
server binaries are missing; `.ci/run` installs them and requires this module (CNNSPEC_REQUIRE)."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, start_python
from tests.test_search import CNNSPEC, SPEC, check_shared, optuna
from tests.test_search_seeds import worker_process

# (one worker runs the module, so one PostgreSQL server is started, not one per xdist worker)
pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.xdist_group("postgres_server")]


def _postgres_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(candidates[-1]).parent if candidates else None


@pytest.fixture(scope="module")
def postgres_url():
    """A throw-away PostgreSQL server on a Unix socket in a temp folder (run as `nobody` when we
    are root: initdb refuses root). One per module (its initdb and start took a second of each
    test): the tests never meet in it, the study test uses the `postgres` database, the other
    test databases of its own that it creates."""
    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
    pytest.importorskip("psycopg2")
    folder = Path(tempfile.mkdtemp(prefix="cnnspec-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "nobody")
        as_user = ["runuser", "-u", "nobody", "--"]
    folder.chmod(0o755)
    port = "5439"
    run = lambda *args: subprocess.run([*as_user, *args], capture_output=True, text=True, timeout=120)  # noqa: E731
    made = run(
        str(bin_dir / "initdb"), "-D", str(folder / "data"), "-A", "trust", "-U", "postgres", "--no-sync"
    )
    assert made.returncode == 0, made.stdout + made.stderr
    options = f"-k {folder} -c listen_addresses= -p {port} -c fsync=off"
    started = run(
        str(bin_dir / "pg_ctl"),
        "-D",
        str(folder / "data"),
        "-l",
        str(folder / "log"),
        "-w",
        "-o",
        options,
        "start",
    )
    assert started.returncode == 0, started.stdout + started.stderr + (folder / "log").read_text()
    try:
        yield f"postgresql://postgres@/postgres?host={folder}&port={port}"
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def test_two_workers_share_a_postgresql_study(write_spec, tmp_path, postgres_url):
    # (one epoch a trial: the sharing is the point, not the training; each trial trains for real)
    spec = write_spec(SPEC.replace("  epochs: 2\n", "  epochs: 1\n", 1))
    # two "machines": the same command with the same --storage, each with its own folder
    folders = [tmp_path / "a", tmp_path / "b"]
    procs = [
        start_python(
            *[CNNSPEC, "search", str(spec), "--out", str(f), "--storage", postgres_url],
            *["--trials", "4", "-q", "--no-report"],  # (the pages are not what is shared)
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        for f in folders
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert not [o for o in outputs if "Heartbeat of storage" in o], outputs  # Optuna's warning, filtered
    from cnnspec.search.study import open_storage

    study = optuna.load_study(study_name="tiny_search", storage=open_storage(postgres_url, tmp_path))
    check_shared(study, folders, 4)  # (exactly: the ask lock covers the database)


def test_workers_opening_a_new_database_at_the_same_moment_all_open_it(postgres_url, tmp_path, monkeypatch):
    """Workers started together on a database without Optuna's tables all create them; the
    losers get a unique-key violation or `relation "studies" already exists` (the CI failure
    of the test above, on a busy machine) and must open the storage the winner made."""
    import threading

    import sqlalchemy

    from cnnspec.search import study as studies

    monkeypatch.setattr(studies.time, "sleep", lambda seconds: None)  # retry at once: more overlap
    admin = sqlalchemy.create_engine(studies.postgres_driver(postgres_url), isolation_level="AUTOCOMMIT")
    failures: list[str] = []
    for round_ in range(6):
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text(f"CREATE DATABASE fresh{round_}"))
        url = postgres_url.replace("/postgres?", f"/fresh{round_}?")
        start = threading.Barrier(4)

        def open_it(url: str, start: threading.Barrier, round_: int) -> None:
            start.wait()
            try:
                studies.open_storage(url, tmp_path).engine.dispose()
            except Exception as exc:  # collected and shown below
                failures.append(f"round {round_}: {exc}")

        threads = [threading.Thread(target=open_it, args=(url, start, round_)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    admin.dispose()
    assert failures == []


def test_workers_that_open_a_new_postgresql_study_together_draw_different_values(
    write_spec, tmp_path, postgres_url
):
    """Two machines' workers (each its own --out) open one new study, both as worker 0 of an
    empty study, then ask: each sampler is keyed by a trial the database gave it alone."""
    import sqlalchemy

    from cnnspec.search import study as studies
    from tests.test_search_seeds import check_apart, spec_with, start_workers

    admin = sqlalchemy.create_engine(studies.postgres_driver(postgres_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text("CREATE DATABASE seeds"))
    admin.dispose()
    url = postgres_url.replace("/postgres?", "/seeds?")
    start_workers(spec_with(write_spec, "random"), [tmp_path / "a", tmp_path / "b"], url, trials=6)
    study = optuna.load_study(study_name="tiny_search", storage=studies.open_storage(url, tmp_path))
    check_apart(study, 2, 6)  # (exactly: the ask lock covers the database)


def _database(postgres_url: str, name: str) -> str:
    """A new database of its own on the test server: its URL."""
    import sqlalchemy

    from cnnspec.search import study as studies

    admin = sqlalchemy.create_engine(studies.postgres_driver(postgres_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return postgres_url.replace("/postgres?", f"/{name}?")


@contextlib.contextmanager
def _advisory_lock_waits(url: str) -> Iterator[Callable[[], bool]]:
    """Whether a session of the server at ``url`` waits for an advisory lock (the ask lock) that
    another holds, as the server's ``pg_locks`` says: an observation of the lock, not a timed
    wait."""
    import sqlalchemy

    from cnnspec.search import study as studies

    engine = sqlalchemy.create_engine(studies.postgres_driver(url), isolation_level="AUTOCOMMIT")
    query = sqlalchemy.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")

    def waits() -> bool:
        with engine.connect() as connection:
            return connection.execute(query).scalar_one() > 0

    try:
        yield waits
    finally:
        engine.dispose()


def test_two_workers_of_different_outs_on_one_postgresql_study_start_no_trial_beyond_the_budget(
    postgres_url, tmp_path, monkeypatch
):
    """Before: each worker counted 4 of 5 under its own OUT/.ask.lock and each asked (PostgreSQL
    locks the rows Optuna takes, not the count): 6 trials. The worker that counted first waits
    until the other has counted too, or until the server says the other waits for the ask lock."""
    from tests.test_search_races import _config, race_for_the_last_trial

    url = _database(postgres_url, "budget")
    cfgs = [_config(tmp_path / "a", url), _config(tmp_path / "b", url)]
    with _advisory_lock_waits(url) as held:
        assert sorted(race_for_the_last_trial(cfgs, monkeypatch, held), key=str) == [4, None]
    from cnnspec.search.study import open_storage

    assert len(optuna.load_study(study_name="s", storage=open_storage(url, tmp_path)).get_trials()) == 5


def test_a_killed_worker_leaves_no_ask_lock_held(postgres_url, tmp_path):
    """The advisory lock is its session's: a worker killed (SIGKILL) while it holds it, in the
    middle of an ask, holds it no more, and the next worker, which the server had kept waiting
    for it, takes it at once."""
    import signal
    import threading

    from cnnspec.search.worker import ask_lock

    url = _database(postgres_url, "killed")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    script = tmp_path / "hold.py"
    script.write_text(
        "import sys, time\nfrom pathlib import Path\nfrom cnnspec.search.worker import ask_lock\n"
        "with ask_lock(Path(sys.argv[1]), sys.argv[2], 's'):\n"
        "    print('held', flush=True)\n    time.sleep(600)\n"
    )
    # (a fork of the seed tests' worker server: this checkout's cnnspec, Optuna imported)
    holder = worker_process(
        script, str(tmp_path / "a"), url, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        first = holder.stdout.readline().strip()
        assert first == "held", first + holder.stdout.read()
        taken = threading.Event()

        def take() -> None:
            with ask_lock(tmp_path / "b", url, "s"):
                taken.set()

        with _advisory_lock_waits(url) as waits:
            thread = threading.Thread(target=take, daemon=True)
            thread.start()
            # held: the other worker waits (the server says its session waits for the lock;
            # a 2 s wait for it stood in for that)
            deadline = time.monotonic() + 30
            while not waits() and not taken.is_set() and time.monotonic() < deadline:
                time.sleep(0.02)
            assert waits() and not taken.is_set()
        holder.send_signal(signal.SIGKILL)
        assert taken.wait(30)
    finally:
        holder.kill()
        holder.wait()
