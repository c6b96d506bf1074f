"""The study's storage and the study itself: opened the same way by every worker.

Storage is a journal file (``DIR/study.journal``, Optuna's ``JournalFileBackend``: appends under
a file lock, so processes on one machine, or on several sharing a disk, can use one study) or
any SQLAlchemy URL (``postgresql://…`` for workers on many machines). An unreachable URL, a
missing driver and a damaged journal are :class:`UsageError`s with a hint, never a traceback.
The default journal is never written through a link: a symlink, hard link or anything but a
plain file at ``OUT/study.journal`` is refused (a file of the user's would get the journal
appended, or be cut by a repair); a ``--storage`` path is the user's choice and is used as named,
but is never cut through a link either.
A study remembers its search space (a fingerprint in its user attributes) and what else makes
a trial what it is (:func:`trial_meaning`: the ``--set`` overrides and a hash of each section of
the spec outside the searched values): the same name with another space, or continued with
another spec or other overrides, is refused, since its trials would mean something else.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import stat
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

from cnnspec.errors import UsageError
from cnnspec.fileio import user_path, write_atomic
from cnnspec.search import seeding
from cnnspec.search.redaction import at_in_password, redact, scrub
from cnnspec.spec.search import SearchSpace, grid_values

JOURNAL_NAME = "study.journal"
SPACE_ATTR = "cnnspec_space"
MEANING_ATTR = "cnnspec_meaning"
#: The study's training seed (:func:`study_seed`): every trial of a spec without
#: ``training.seed`` trains with it.
SEED_ATTR = "cnnspec_seed"
#: The sampler the study was started with (:func:`check_sampler`).
SAMPLER_ATTR = "cnnspec_sampler"
#: The one Optuna warning of a study whose storage beats a heartbeat: ``study.ask`` outside
#: ``Study.optimize`` (our workers ask and tell, and run the heartbeat thread themselves).
HEARTBEAT_WARNING = "Heartbeat of storage is supposed to be used with Study.optimize"
#: RDB storages: a running trial beats every HEARTBEAT s; silent for GRACE s, it is failed (and
#: retried once) by the next worker that starts a trial, on any machine.
HEARTBEAT = 10
GRACE = 60


# Optuna's databases keep a study's name in a column of 512 characters (PostgreSQL refuses a
# longer one mid-search); the journal takes any, and one limit serves both.
MAX_STUDY_NAME = 512


def check_study_name(study: str) -> None:
    """Refuse a ``--study`` that names no study, an empty or blank one (it was taken for the
    spec's own study, silently), or one longer than a database keeps."""
    if not study.strip():
        raise UsageError(
            f"expected --study to name a study; received {study!r}",
            "leave --study out for the spec's own study (its name is the spec's name)",
        )
    if len(study) > MAX_STUDY_NAME:
        raise UsageError(
            f"expected --study to have at most {MAX_STUDY_NAME} characters; received {len(study)}",
            "give the study a shorter name",
        )


def study_tag(study: str, spec_name: str) -> str:
    """What the files of study ``study`` carry in their names in a search folder: ``""`` for
    the spec's own study (the default ``--study``: ``trial-NNN/``, ``search.json``,
    ``best.yaml``), ``-SLUG`` for another one (``trial-SLUG-NNN/``, ``search-SLUG.json``,
    ``best-SLUG.yaml``), so two studies in one ``--out`` never share a trial folder or a
    summary. The slug is the name in lower case with anything but letters, digits and ``_``
    made ``-``; a name it changes also gets a short hash of itself (``My Study`` and
    ``my-study`` stay apart, on case-insensitive disks too)."""
    if study == spec_name:
        return ""
    slug = re.sub(r"[^a-z0-9_]+", "-", study.lower()).strip("-")[:40]
    if slug != study:
        digest = hashlib.sha256(study.encode()).hexdigest()[:6]
        slug = f"{slug}-{digest}" if slug else digest
    return f"-{slug}"


def import_optuna() -> Any:
    """Optuna (quiet), or a usage error that says how to install it."""
    try:
        import optuna
    except ModuleNotFoundError:
        raise UsageError(
            "cnnspec search needs Optuna, which is not installed",
            "pip install 'cnnspec[search]'",
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


#: What ``cnnspec train`` leaves in a run folder and a search never writes at the top of its
#: own: ``lock.json`` (what ``cnnspec runs`` takes a run folder by), the run's lock while it
#: trains, and its results. A search into such a folder would replace the run's history.png
#: with the study's and mix the study's files into the run.
TRAIN_RUN_FILES = ("lock.json", ".cnnspec.lock", "metrics.json", "history.json", "model.keras")


def check_search_folder(out: Path) -> None:
    """Refuse ``--out`` when it is a ``cnnspec train`` run folder (a trial's folder included):
    nothing has been written when this raises. A new folder, an empty one and a search folder
    (continued, or holding another study) pass."""
    found = [name for name in TRAIN_RUN_FILES if os.path.lexists(out / name)]
    if found:
        raise UsageError(
            f"expected a search folder (or a new one) for --out; {out} is a run folder of "
            f"cnnspec train (it has {', '.join(found)})",
            "choose another --out (e.g. runs/NAME-search): a search writes its own history.png, "
            "best.yaml, search.json and trial folders, which would replace or mix with the run's",
        )


def journal_path(storage: str | None, out: Path) -> Path | None:
    """The journal file of this storage (``None`` for a database URL).

    The search folder ``out`` is checked first (:func:`check_search_folder`): this is the
    first thing a search asks of it, before a database study is created or anything is
    written. The default journal, ``OUT/study.journal``, must be nothing yet or a plain file
    of its own (:func:`check_default_journal`); a path named by ``--storage`` is taken as it
    is."""
    check_search_folder(out)
    path = journal_file(storage, out)
    if storage is None and path is not None:
        check_default_journal(path)
    return path


def journal_file(storage: str | None, out: Path) -> Path | None:
    """The journal file of this storage (``None`` for a database URL), without the checks of
    :func:`journal_path` (a worker names it in its write errors, long after they passed)."""
    if storage is None:
        return out / JOURNAL_NAME
    return None if "://" in storage else Path(storage)


def _not_plain(path: Path, *, links: bool) -> str | None:
    """What is at ``path`` when it is no plain file (``None``: a plain file, or nothing);
    ``links``: a hard link (a file that has other names too) counts as no plain file."""
    try:
        info = os.lstat(path)
    except (OSError, ValueError):
        return None  # nothing there (yet): the journal is created as a plain file
    if stat.S_ISLNK(info.st_mode):
        return "symlink"
    if not stat.S_ISREG(info.st_mode):
        return "folder" if stat.S_ISDIR(info.st_mode) else "special file (FIFO, device or socket)"
    if links and info.st_nlink > 1:
        return "hard link (a file with other names too)"
    return None


def check_default_journal(path: Path) -> None:
    """Refuse a symlink, hard link or anything but a plain file at the default journal path:
    Optuna would append the study to the file it leads to (someone's notes, a config), and a
    repair would cut it. Nothing has touched it when this raises."""
    kind = _not_plain(path, links=True)
    if kind is not None:
        raise UsageError(
            f"expected the study journal {path} to be a plain file or nothing; found a {kind}",
            "remove it or choose another --out (cnnspec writes no journal through it); to use "
            "the file it names on purpose, give that path as --storage",
        )


#: What the lock file beside a journal file or a SQLite database adds to its name
#: (``study.journal.ask.lock``, ``study.db.ask.lock``).
STORAGE_LOCK_SUFFIX = ".ask.lock"


def storage_lock_path(storage: str | None, out: Path | None = None) -> Path | None:
    """The lock file beside the journal file or SQLite database file of ``storage``
    (``study.journal.ask.lock``, ``study.db.ask.lock``), under which every worker sharing it,
    from any ``--out``, counts the trials left and asks (:func:`cnnspec.search.worker.
    ask_lock`); the default journal (``storage`` ``None``) is ``out``'s. ``None`` for a
    server's database (PostgreSQL's lock is an advisory lock: :func:`advisory_lock`), an
    in-memory database (no other process shares it), and no ``out`` for the default journal.
    The file is found as it is opened: a relative path from the current folder, a URI filename
    (``sqlite:///file:x.db?uri=true``) as its path, and links followed, so every spelling of one
    file gives one lock."""
    if storage is None or "://" not in storage:
        journal = journal_file(storage, out) if (storage is not None or out is not None) else None
        if journal is None:
            return None
        real = Path(os.path.realpath(journal))
        return real.with_name(real.name + STORAGE_LOCK_SUFFIX)
    try:
        from sqlalchemy.engine import make_url

        url = make_url(storage)
        backend = url.get_backend_name()
    except Exception:  # (not a URL SQLAlchemy reads: opening the storage says so)
        return None
    database = url.database
    if backend != "sqlite" or not database or database == ":memory:" or url.query.get("mode") == "memory":
        return None
    if str(url.query.get("uri", "")).lower() in ("true", "1") and database.startswith("file:"):
        from urllib.parse import unquote, urlsplit

        database = unquote(urlsplit(database).path)
        if not database or database == ":memory:":
            return None
    real = Path(os.path.realpath(database))
    return real.with_name(real.name + STORAGE_LOCK_SUFFIX)


#: How :func:`storage_identity` starts the path of a journal or SQLite file inside ``--out``.
IN_OUT = "OUT/"


def storage_identity(storage: str | None, out: Path) -> str:
    """The storage ``storage`` (``None``: the default journal of ``out``) as one text for every
    spelling of it: a journal file or SQLite database file by its real path (a relative path
    read from the current folder, links followed), any other URL as shown (its password
    redacted). search.json records it (``storage_id``): a search into a folder that holds a
    study of the same name in another storage would replace that study's files. A file inside
    ``out`` is named from it (``OUT/study.journal``, ``sqlite://OUT/study.db``), so that the
    folder moved, renamed or mounted at another path still holds the same study."""
    lock = storage_lock_path(storage, out)
    if lock is not None:  # a journal or SQLite file: the lock beside it names it, resolved
        path = _from_out(str(lock)[: -len(STORAGE_LOCK_SUFFIX)], out)
        return path if storage is None or "://" not in storage else f"sqlite://{path}"
    return redact(storage) if storage else _from_out(os.path.realpath(out / JOURNAL_NAME), out)


def _from_out(path: str, out: Path) -> str:
    """``path`` (a real path) as ``OUT/…`` when it lies inside ``out`` (resolved), else as it is."""
    try:
        inside = Path(path).relative_to(os.path.realpath(out))
    except ValueError:
        return path
    return IN_OUT + inside.as_posix()


def moved_storage(before: str, identity: str) -> bool:
    """Whether ``before`` (a recorded :func:`storage_identity`) names a journal or SQLite file by
    an absolute path that no longer exists, and ``identity`` one of the same kind and file name:
    the file was moved, or its disk is mounted at another path on this machine (a journal
    shared by several machines), so it is taken as the same storage. (A search.json of an
    earlier cnnspec named the default journal by its absolute path too.)"""

    def parts(text: str) -> tuple[str, str]:
        scheme = "sqlite://" if text.startswith("sqlite://") else ""
        return scheme, text[len(scheme) :]

    (kind, path), (now_kind, now_path) = parts(before), parts(identity)
    if kind != now_kind or "://" in path or "://" in now_path or not os.path.isabs(path):
        return False
    return not os.path.lexists(path) and Path(path).name == Path(now_path).name


def advisory_key(study_name: str) -> int:
    """The PostgreSQL advisory lock key of study ``study_name``'s ask lock: a signed 64-bit
    number from its name (advisory locks are per database, as the study is)."""
    digest = hashlib.sha256(f"cnnspec ask lock: {study_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@functools.lru_cache(maxsize=8)
def _lock_engine(url: str) -> Any:
    """An engine for the advisory lock's own connections: no pool, so that a connection closed
    (or lost) ends its session, and the session's locks with it; autocommit, so that it holds
    no transaction open while the worker asks."""
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    return sqlalchemy.create_engine(
        postgres_driver(url),
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": 10},
    )


@contextlib.contextmanager
def advisory_lock(storage: str | None, study_name: str) -> Iterator[None]:
    """On a PostgreSQL storage, hold a session-level advisory lock keyed by the study's name
    (:func:`advisory_key`) on a connection of its own while inside, so that workers of any
    machine and any ``--out`` count the trials left and ask one at a time (the row locks
    Optuna takes do not cover the count). A killed worker's lock goes with its session. Any
    other storage: nothing to hold."""
    if storage is None or not storage.startswith("postgresql"):
        yield
        return
    import sqlalchemy

    key = advisory_key(study_name)
    connection = None
    try:
        connection = _lock_engine(storage).connect()
        connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": key})
    except BaseException as exc:
        if connection is not None:  # (connected, the lock not taken: the session let go)
            with contextlib.suppress(Exception):
                connection.close()
        if not isinstance(exc, (ModuleNotFoundError, sqlalchemy.exc.SQLAlchemyError)):
            raise
        _refuse_lock(exc, storage, study_name)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):  # (a lost connection: its session's lock is gone)
            connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
        with contextlib.suppress(Exception):
            connection.close()


def _refuse_lock(exc: BaseException, storage: str, study_name: str) -> NoReturn:
    """Raise the :class:`UsageError` of an advisory lock that could not be taken: its driver
    is missing (``exc`` a :class:`ModuleNotFoundError`), or the server refused."""
    if isinstance(exc, ModuleNotFoundError):
        raise UsageError(
            f"cannot open the storage {redact(storage)}: its database driver {exc.name!r} is not installed",
            "pip install 'cnnspec[search]' (psycopg2 for postgresql://)",
        ) from None
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    raise UsageError(
        f"cannot take the ask lock of the study {study_name!r} in {redact(storage)}: {scrub(first, storage)}",
        _open_hint(storage),
    ) from None


def storage_label(storage: str | None, out: Path) -> str:
    return redact(storage) if storage else str(out / JOURNAL_NAME)


def open_storage(storage: str | None, out: Path, *, retry_failed: bool = True) -> Any:
    """The Optuna storage: ``storage`` (a SQLAlchemy URL, or a journal file path) or the journal
    file in ``out``."""
    optuna = import_optuna()
    path = journal_path(storage, out)
    if path is not None:
        return _journal(optuna, path)
    from optuna.storages import RDBStorage

    shown = redact(storage)
    url = storage
    if in_memory(url):
        raise UsageError(
            f"expected a SQLite database file for --storage; {shown} is a database in memory, which "
            "each connection (a worker, its heartbeat) opens empty: the study and its trials would be lost",
            "name a file: --storage sqlite:///path.db (relative to this folder; sqlite:////abs/path.db), "
            "or leave --storage out for the journal OUT/study.journal",
        )
    if at_in_password(url):  # (refused before the driver quotes what it took for the host)
        raise UsageError(
            f"expected the password in --storage to hold no '@' as written; {shown} has one, which "
            "ends the password for SQLAlchemy: the rest would be read as the host",
            "write each '@' of the password as %40 (postgresql://user:p%40ss@host/db)",
        )
    storage = postgres_driver(storage)
    quiet_heartbeat_warning()
    engine: dict[str, Any] = {}
    if storage.startswith("postgresql"):
        engine = {"connect_args": {"connect_timeout": 10}}
    try:
        for attempt in range(5):
            try:
                return RDBStorage(
                    storage,
                    engine_kwargs=engine,
                    heartbeat_interval=HEARTBEAT,
                    grace_period=GRACE,
                    heartbeat_stale_trial_callback=functools.partial(retry_stale, out=out)
                    if retry_failed
                    else None,
                )
            except Exception as exc:
                if not lost_schema_race(exc) or attempt == 4:
                    raise
                time.sleep(0.5 + attempt)  # the winner's tables are there a moment later
        raise AssertionError("unreachable")
    except ImportError as exc:  # the driver missing (Optuna wraps SQLAlchemy's import of it)
        missing = _missing_module(exc)
        if missing is None:
            raise UsageError(
                f"cannot open the storage {shown}: {scrub(str(exc), url)}", driver_hint(url)
            ) from None
        raise UsageError(
            f"cannot open the storage {shown}: its database driver {missing!r} is not installed",
            driver_hint(url),
        ) from None
    except Exception as exc:  # SQLAlchemy's OperationalError, ArgumentError, …
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(
            f"cannot open the study storage {shown}: {scrub(first, url)}", _open_hint(url)
        ) from None


#: The pip package of each SQLAlchemy driver a storage URL may name (``mysql+pymysql://``;
#: ``mysql://`` is SQLAlchemy's default, ``mysqldb``).
DRIVER_PACKAGES = {
    "mysqldb": "mysqlclient",
    "pymysql": "PyMySQL",
    "mysqlconnector": "mysql-connector-python",
    "mariadbconnector": "mariadb",
    "psycopg": "'psycopg[binary]'",
    "pg8000": "pg8000",
    "asyncpg": "asyncpg",
    "pyodbc": "pyodbc",
    "pymssql": "pymssql",
    "oracledb": "oracledb",
    "cx_oracle": "cx_Oracle",
}


def _missing_module(exc: BaseException) -> str | None:
    """The module whose import failed: ``exc``'s own name, or that of the error it wraps
    (Optuna's "Failed to import DB access module" is raised from SQLAlchemy's)."""
    while exc is not None:
        if isinstance(exc, ModuleNotFoundError) and exc.name:
            return exc.name
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return None


def driver_hint(url: str) -> str:
    """How to install the database driver of the storage ``url``: cnnspec's extra for
    PostgreSQL's default (psycopg2), the driver's own package for another one (MySQL's
    ``mysql://`` is ``mysqlclient``), and the other drivers of that database to choose from."""
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    except Exception:  # (a dialect SQLAlchemy does not know)
        return "name a database SQLAlchemy has a dialect for (postgresql://, mysql+pymysql://, sqlite:///)"
    if backend == "postgresql" and (driver == "psycopg2" or url.startswith("postgresql://")):
        # (a plain postgresql:// takes psycopg2 once it is installed: postgres_driver)
        return "pip install 'cnnspec[search]' (psycopg2 for postgresql://)"
    package = DRIVER_PACKAGES.get(driver, driver)
    if backend == "mysql" and driver != "pymysql":
        return (
            f"pip install {package} (the driver {driver} of {backend}+{driver}://), or name one that is "
            "installed: mysql+pymysql:// (pip install PyMySQL)"
        )
    return f"pip install {package} (the driver {driver} of {backend}+{driver}://)"


def in_memory(url: str) -> bool:
    """Whether the SQLAlchemy URL ``url`` names a SQLite database in memory (``sqlite://``,
    ``sqlite:///:memory:``, ``?mode=memory``, a ``file::memory:`` URI): one no other connection
    sees, so Optuna's heartbeat thread found no tables in it, and a search lost its trials."""
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        backend = parsed.get_backend_name()
    except Exception:  # (not a URL SQLAlchemy reads: opening the storage says so)
        return False
    if backend != "sqlite":
        return False
    database = parsed.database or ""
    if not database or database == ":memory:" or parsed.query.get("mode") == "memory":
        return True
    if str(parsed.query.get("uri", "")).lower() in ("true", "1") and database.startswith("file:"):
        from urllib.parse import parse_qs, unquote, urlsplit

        parts = urlsplit(database)
        return unquote(parts.path) in ("", ":memory:") or "memory" in parse_qs(parts.query).get("mode", [])
    return False


def _open_hint(url: str) -> str:
    """What to check when a database storage does not open: SQLite has no server, only a file."""
    if not url.startswith("sqlite"):
        return "check that the database server runs and the URL (host, port, user, database) is right"
    try:
        from sqlalchemy.engine import make_url

        database = make_url(url).database
    except Exception:
        database = None
    if not database or database == ":memory:":
        return (
            "SQLite needs no server: check the URL (sqlite:///relative/path.db, sqlite:////absolute/path.db)"
        )
    folder = user_path(database).parent
    return (
        f"SQLite needs no server, only a file: the folder of the database file ({folder}) must exist "
        "and be writable (sqlite:///relative/path.db, sqlite:////absolute/path.db)"
    )


def database_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is a database storage's failure (a server that went down, a connection
    lost): SQLAlchemy's error, or Optuna's ``StorageInternalError``, which wraps one on a commit
    and blames "invalid data in the commit". It is the study's, never the trial's."""
    import sys

    from optuna.exceptions import StorageInternalError

    if isinstance(exc, StorageInternalError):
        return True
    errors = sys.modules.get("sqlalchemy.exc")  # (loaded with any database storage)
    return errors is not None and isinstance(exc, errors.SQLAlchemyError)


def database_lost(exc: BaseException, storage: str) -> UsageError:
    """The error of a database storage that failed under a running search (``exc``:
    :func:`database_failure`): the database's own first line, not Optuna's wrapper's; the hint
    says the search goes on from there once it is back."""
    cause: BaseException = exc
    while cause.__cause__ is not None:  # Optuna's wrapper → SQLAlchemy's error (the server's words)
        cause = cause.__cause__
    first = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    return UsageError(
        f"the study storage {redact(storage)} failed: {scrub(first, storage)}",
        f"{_open_hint(storage)}, then run the same command again: the study goes on (the trial "
        "that was running is trained again, or continued from its last epoch)",
    )


def quiet_heartbeat_warning() -> None:
    """Silence Optuna's warning that a storage with a heartbeat is used outside
    ``Study.optimize`` (printed by every ``study.ask`` of a worker): only that message."""
    warnings.filterwarnings("ignore", message=re.escape(HEARTBEAT_WARNING), category=UserWarning)


#: SQLSTATEs of a worker that lost the race to create a new database's tables (PostgreSQL):
#: unique_violation (pg_type's row for a table being made beside it), duplicate_table,
#: duplicate_object and deadlock_detected.
_SCHEMA_RACE_STATES = frozenset({"23505", "42P07", "42710", "40P01"})


def lost_schema_race(exc: BaseException) -> bool:
    """Whether opening an RDB storage failed only because another worker, started at the same
    moment on the same new database, created Optuna's tables first.

    Optuna creates its tables when missing. Two workers that both find them missing both create
    them: the loser gets a unique-key violation while the winner's transaction is open, or
    ``relation "studies" already exists`` (a ``ProgrammingError``, not an ``IntegrityError``)
    once it has committed. Either way the tables are there when it tries again.
    """
    driver_error = getattr(exc, "orig", None)  # SQLAlchemy's wrapper keeps the driver's error
    state = getattr(driver_error, "pgcode", None)  # psycopg2
    if state is None:
        state = getattr(getattr(driver_error, "diag", None), "sqlstate", None)  # psycopg 3
    if state is not None:
        return state in _SCHEMA_RACE_STATES
    # drivers that name no SQLSTATE (SQLite, MySQL): by the error's kind and text
    return type(exc).__name__ == "IntegrityError" or "already exists" in str(driver_error or "")


#: Why a trial whose worker died failed (its ``failed`` attribute, in trial.json and search.json):
#: the same words for a worker of this host (its PID gone) and one whose heartbeat stopped.
WORKER_DIED = "worker died"


def retry_stale(study: Any, frozen: Any, out: Path | None = None) -> None:
    """A trial whose heartbeat stopped (its worker died, on any machine) was failed: write its
    ``trial.json`` (in ``out``, :func:`cnnspec.search.worker.write_dead_trial_json`), and
    enqueue it once more with the same values, unless it was itself the retry of a dead
    worker's trial. Its ``failed`` attribute was set just before Optuna failed it
    (:func:`cnnspec.search.worker.fail_stale`: a finished trial's attributes can no longer be
    set). (Optuna's RetryHeartbeatStaleTrialCallback would enqueue the same, but marks the retry
    in system attributes the trial budget of :func:`cnnspec.search.worker.counted` does not
    read.)"""
    if out is not None:
        from cnnspec.search.worker import write_dead_trial_json  # (worker imports this module)

        write_dead_trial_json(out, frozen, str(frozen.user_attrs.get("failed") or WORKER_DIED))
    if frozen.user_attrs.get("retry_reason") == WORKER_DIED:
        return
    study.enqueue_trial(frozen.params, user_attrs={"retry_of": frozen.number, "retry_reason": WORKER_DIED})


def postgres_driver(url: str) -> str:
    """``postgresql://`` with the driver that is installed: SQLAlchemy 2.1 means psycopg 3 by it,
    2.0 psycopg2 (the one ``cnnspec[search]`` installs); a URL that names a driver is kept."""
    import importlib.util

    if not url.startswith("postgresql://"):
        return url
    for module, dialect in (("psycopg2", "postgresql+psycopg2"), ("psycopg", "postgresql+psycopg")):
        if importlib.util.find_spec(module) is not None:
            return dialect + url[len("postgresql") :]
    return url


#: What leaves a journal's last line half written: a writer killed in the middle of it, or a
#: disk that took only part of it (full).
TORN_BY = "a process killed or a disk full"


def repair_journal(path: Path) -> str | None:
    """Check a journal before Optuna opens it; drop its last line when a writer left it
    half written (no newline, not JSON: that operation never happened), keeping the file before
    as ``PATH.bak``, and return a note saying so. Any other broken line raises :func:`damaged`
    at once, before Optuna skips it and appends after it (which breaks the file for good)."""
    if not path.is_file():
        return None
    from optuna.storages.journal import JournalFileSymlinkLock

    lock = JournalFileSymlinkLock(str(path))  # Optuna's own: no worker appends meanwhile
    lock.acquire()
    try:
        return _repair(path)
    finally:
        lock.release()


def _repair(path: Path) -> str | None:
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    lines = raw.split(b"\n")
    partial = lines.pop()  # b"" when the file ends with a newline
    for number, line in enumerate(lines, start=1):
        try:
            json.loads(line)
        except ValueError as exc:
            raise damaged(path, exc, number) from None
    if not partial:
        return None
    try:
        json.loads(partial)
        return None  # complete, only its newline missing: Optuna reads it
    except ValueError:
        pass
    backup = path.with_name(path.name + ".bak")
    kind = _not_plain(path, links=False)
    if kind is not None:  # (a --storage path: the default one was refused before)
        raise _uncut(path, kind)
    write_atomic(backup, raw)  # (renamed over whatever is there: never written through a link)
    _cut(path, len(raw) - len(partial))
    return f"the last line of {path} was half written ({TORN_BY}); removed it (the file before: {backup})"


def _uncut(path: Path, kind: str) -> UsageError:
    return UsageError(
        f"the last line of the study journal {path} is half written ({TORN_BY}), but {path} "
        f"is a {kind}: cnnspec cuts no file through it",
        "remove that last line (the one without a newline) from the file it names yourself, "
        "then run the same command again",
    )


def _cut(path: Path, size: int) -> None:
    """Truncate the journal at ``path`` to ``size`` bytes, never through a symlink (one put
    there since the check fails the open) and only a plain file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if os.path.islink(path):
            raise _uncut(path, "symlink") from None
        raise UsageError(f"cannot repair the journal file {path}: {exc.strerror or exc}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _uncut(path, "special file")
        os.ftruncate(fd, size)
    finally:
        os.close(fd)


def _journal(optuna: Any, path: Path) -> Any:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        storage = JournalStorage(JournalFileBackend(str(path)))
    except OSError as exc:
        raise UsageError(f"cannot open the journal file {path}: {exc.strerror or exc}") from None
    except Exception as exc:  # a damaged journal is replayed on open
        raise damaged(path, exc) from None
    return storage


def damaged(path: Path, exc: BaseException, line: int | None = None) -> UsageError:
    where = f" at line {line}" if line else ""
    return UsageError(
        f"the study journal {path} is damaged{where} and cannot be read ({type(exc).__name__}: {exc})",
        f"nothing in it was changed; move it away (e.g. mv {path} {path}.bad) to start a new study there",
    )


def create_study(
    optuna: Any,
    storage: Any,
    name: str,
    space: SearchSpace,
    label: str,
    meaning: dict[str, Any] | None = None,
) -> Any:
    """Create the study, or load it when it exists (its space must be this one, and its
    ``meaning``, :func:`trial_meaning`, this one when given)."""
    try:
        study = optuna.create_study(
            study_name=name,
            storage=storage,
            direction=space.direction,
            load_if_exists=True,
        )
    except json.JSONDecodeError as exc:  # a journal line that is not JSON
        raise damaged(Path(label), exc) from None
    except Exception as exc:
        if isinstance(exc, ValueError) and "direction" in str(exc).lower():
            raise UsageError(
                f"the study {name!r} in {label} optimizes in another direction",
                "choose another --study name, or another --out",
            ) from None
        raise storage_failure(label, exc) from None
    fingerprint = space.fingerprint()
    found = study.user_attrs.get(SPACE_ATTR)
    if found is None:
        study.set_user_attr(SPACE_ATTR, fingerprint)
        study.set_user_attr("cnnspec_objective", space.objective)
        study.set_user_attr("cnnspec_dimensions", space.describe())
    elif found != fingerprint:
        before = {d["name"] for d in study.user_attrs.get("cnnspec_dimensions", [])}
        now = {d.name for d in space.dimensions}
        changed = sorted(before ^ now) or ["the ranges, choices or objective"]
        raise UsageError(
            f"the study {name!r} in {label} was started with another search space (differs in: "
            f"{', '.join(changed)}); its trials would not mean the same",
            "give this search another --study name (its files in the same --out are named apart: "
            "trial-NAME-NNN/, search-NAME.json, best-NAME.yaml) or another --out, or search with "
            "the old space",
        )
    check_sampler(study, name, label, space)
    if meaning is not None:
        check_meaning(study, name, label, meaning)
    return study


def check_sampler(study: Any, name: str, label: str, space: SearchSpace) -> None:
    """Record the section's sampler in a study that has none; refuse (a :class:`SpecError` at
    ``search.sampler``) to continue a study with another sampler. Optuna's grid gives trial
    ``n`` the ``n``-th point of its grid: continued after trials of another sampler, it skipped
    points and ran others twice, and still said the study was done. A study of an older
    cnnspec, which kept no record, is known to be a grid's by its trials' ``grid_id``."""
    from cnnspec.errors import Diagnostics

    found = study.user_attrs.get(SAMPLER_ATTR)
    if not isinstance(found, str):
        trials = study.get_trials(deepcopy=False)
        grid = ["grid_id" in t.system_attrs for t in trials if t.state.name != "WAITING"]
        if grid and (space.sampler == "grid") != all(grid):  # (the older study's, by its trials)
            found = "grid" if all(grid) else "random or tpe"
        else:
            study.set_user_attr(SAMPLER_ATTR, space.sampler)
            return
    if found == space.sampler:
        return
    if not study.get_trials(deepcopy=False):  # (nothing drawn yet: the study takes this one)
        study.set_user_attr(SAMPLER_ATTR, space.sampler)
        return
    diags = Diagnostics()
    diags.error(
        f"expected search.sampler to be {found}, the sampler of the study {name!r} in {label}; "
        f"received {space.sampler}: its trials were drawn by {found}"
        + (
            ", and a grid continued after them skips points and runs others twice"
            if space.sampler == "grid"
            else ""
        ),
        space.sampler_loc,
        "search.sampler",
        code="search",
        hint=f"search with sampler: {found} to continue the study, or give this search another --study "
        "name (its files in the same --out are named apart) or another --out",
    )
    diags.raise_if_errors()


#: Top-level keys that do not change what a trial trains (the space has its own check), and
#: ``runtime``: how a machine runs it (strategy, precision, XLA, threads), which may differ
#: between the machines that share one study.
_NOT_TRAINED = frozenset({"search", "name", "description", "runtime"})


def trial_meaning(doc: Any, space: SearchSpace, overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """What a trial means besides its searched values: the ``--set`` overrides (as given, to
    name them) and a hash of each top-level section of the composed spec (``--set`` applied),
    with every searched path set to one fixed value, and without the sections that train nothing
    (:data:`_NOT_TRAINED`)."""
    from cnnspec.spec.search import apply_values

    # the first choice or the low end as written (not candidates()[0], a float 0.0 for a
    # float range's 0: the hash of a study started before would change)
    first = {d.name: d.choices[0] if d.kind == "choice" else d.low for d in space.dimensions}
    fixed = apply_values(doc, space, first)
    sections = {
        key: hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]
        for key, value in fixed.data.items()
        if key not in _NOT_TRAINED
    }
    return {"overrides": [str(o) for o in overrides], "sections": sections}


def check_meaning(study: Any, name: str, label: str, meaning: dict[str, Any]) -> None:
    """Record ``meaning`` in a study that has none; refuse to continue one whose trials were
    trained from another spec or with other ``--set`` overrides (one ranking, two experiments)."""
    found = study.user_attrs.get(MEANING_ATTR)
    if not isinstance(found, dict):  # a new study (or one of a cnnspec that kept no record)
        study.set_user_attr(MEANING_ATTR, meaning)
        return
    before, now = found.get("sections") or {}, meaning["sections"]
    changed = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
    if not changed:
        return
    old, new = list(found.get("overrides") or []), meaning["overrides"]
    what = f"the spec's {', '.join(changed)} (outside the searched values)"
    if old != new:
        what += f"; --set was {_sets(old)}, now {_sets(new)}"
    raise UsageError(
        f"the study {name!r} in {label} was started with another spec or other --set overrides "
        f"(differs in: {what}); its trials would not mean the same",
        f"continue it with the spec and --set options it was started with ({_sets(old)}), or give "
        "this search another --study name (or another --out)",
    )


def _sets(overrides: list[str]) -> str:
    return " ".join(f"--set {o}" for o in overrides) if overrides else "no --set"


def spec_seeds(doc: Any) -> bool:
    """Whether the composed spec ``doc`` sets ``training.seed`` (itself, or by ``--set``)."""
    training = doc.data.get("training")
    return isinstance(training, dict) and training.get("seed") is not None


def kept_seed(study: Any, doc: Any) -> int | None:
    """The study's training seed (:func:`study_seed`) that a trial of the spec ``doc`` trains
    with and best.yaml writes; ``None`` when the spec sets its own ``training.seed`` (or the
    study holds none: one started before, by a worker that fixes none)."""
    if spec_seeds(doc):
        return None
    seed = study.user_attrs.get(SEED_ATTR)
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


def study_seed(study: Any, space: SearchSpace, adopted: int | None = None) -> int:
    """The training seed of every trial of a study whose spec sets no ``training.seed``: the
    one the study holds, else fixed now and kept in it (:data:`SEED_ATTR`): ``search.seed``
    (below training.seed's bound) when the section has one, else a random one. Each trial drew
    a seed of its own before, and so split its validation and test sets its own way: trials
    were scored on different data, and best.yaml could not train the best trial again. Call
    it under the ask lock (:func:`cnnspec.search.worker.ask_lock`): workers that start a study
    together then fix one seed. ``adopted``: the split seed of the run folder the spec's
    ``weights:`` reads (:func:`adopted_split_seed`), taken before ``search.seed`` for a new study,
    as ``cnnspec train`` takes it: the trials' test images are then none those weights trained
    on. A study that holds a seed keeps it."""
    found = study.user_attrs.get(SEED_ATTR)
    if isinstance(found, int) and not isinstance(found, bool):
        return found
    import secrets

    if adopted is not None:
        seed = adopted
    elif isinstance(space.seed, int):
        seed = space.seed % 2**32
    else:
        seed = secrets.randbelow(2**31)
    study.set_user_attr(SEED_ATTR, seed)
    return seed


class AdoptedSplit(NamedTuple):
    """The split seed a study takes from the run folder its spec's weights come from: the seed,
    that run (:class:`cnnspec.analysis.weights_run.WeightsRun`), and the drawn source values of
    the trials that can split as it did (:class:`cnnspec.analysis.trial_data.TrialData`; none
    where the space draws no source: every trial's is the spec's)."""

    seed: int
    run: Any
    drawn: tuple[dict[str, Any], ...] = ()


def adopted_split_seed(compiled: Any) -> AdoptedSplit | None:
    """The split seed of the run folder the searched spec's whole-model ``weights:`` reads, with
    that run, where a trial would take it as ``cnnspec train`` takes it
    (:func:`cnnspec.analysis.weights_run.adopted_seed`: no ``training.seed``, the same data
    source and test split); ``None`` otherwise. No TensorFlow.

    Where the space draws ``data.test_split`` or the data source (:mod:`cnnspec.analysis.trial_data`),
    the spec's own value is no trial's: the seed is taken when a trial can draw that run's test
    split (:func:`drawn_test_splits`) of that run's source, so that those trials test on none of
    the images the weights learnt (each records ``seed_from``); the others draw other test images
    of that source whatever the seed, and count them (``test_note``), or train on another source.
    A search that can draw it nowhere takes the seed of a search without weights."""
    from dataclasses import replace

    from cnnspec.analysis.settings import training_config
    from cnnspec.analysis.trial_data import trial_data
    from cnnspec.analysis.weights_run import adopted_seed
    from cnnspec.training.transfer_loads import whole_run

    config = training_config(compiled)
    if config.seed is not None or whole_run(compiled, config) is None:  # (no trial's data asked)
        return None
    drawn = drawn_test_splits(compiled.search)
    found: AdoptedSplit | None = None
    for trial in trial_data(compiled, compiled.search):
        trains = replace(config, data=trial.data)  # (the trial's data: its source and test_split)
        run = whole_run(compiled, trains)
        if run is not None and drawn is not None:
            run = replace(run, same_split=run.test_split is not None and _among(run.test_split, drawn))
        seed = adopted_seed(trains, run)
        if seed is None or run is None:
            continue
        if found is None:
            found = AdoptedSplit(seed, run)
        if trial.values:
            found = found._replace(drawn=(*found.drawn, trial.values))
    return found


def drawn_test_splits(space: SearchSpace | None) -> tuple[float, ...] | None:
    """The ``data.test_split`` values a trial of ``space`` can draw (a choice's, a stepped
    range's); ``()`` for a range without a step (no value is drawn twice, nor one given);
    ``None`` where the space does not draw it."""
    for d in space.dimensions if space is not None else ():
        if d.target == ("data", "test_split"):
            if d.kind == "float" and d.step is None:
                return ()
            return tuple(float(v) for v in grid_values(d))  # (numbers: the schema takes no other)
    return None


def _among(value: float, values: tuple[float, ...]) -> bool:
    """Whether ``value`` is one of ``values`` (as a float: 0.2 drawn from a step is 0.2)."""
    return any(abs(value - other) <= 1e-9 for other in values)


def storage_failure(label: str, exc: BaseException) -> UsageError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return UsageError(f"the study storage {label} failed: {type(exc).__name__}: {scrub(first, None)}")


def make_sampler(optuna: Any, space: SearchSpace, worker: int, existing: int = 0) -> Any:
    """The section's sampler; a seeded random or TPE sampler keyed by a trial number this
    worker alone holds (:func:`seeding.keyed_sampler`; ``existing``: the trials the study held
    when this worker opened it)."""
    if space.sampler == "grid":
        # The section's own seed, the same in every worker and every run: Optuna's grid gives
        # trial n the n-th point of its shuffled grid, and each worker's own seed shuffled it
        # otherwise (two workers, or a continued search, ran some points twice and others never)
        grid = {d.name: [_categorical(v) for v in grid_values(d)] for d in space.dimensions}
        return _grid_sampler(optuna)(grid, seed=space.seed)
    kind = optuna.samplers.RandomSampler if space.sampler == "random" else optuna.samplers.TPESampler

    def make(seed: int | None) -> Any:
        return kind(seed=seed)

    return seeding.keyed_sampler(optuna, make, space.seed, worker, existing)


def _grid_sampler(optuna: Any) -> type:
    class Grid(optuna.samplers.GridSampler):  # type: ignore[misc, name-defined]
        """Optuna's grid without its ``study.stop()`` once the grid is used up, which raises
        outside ``study.optimize``: our workers stop by the trial budget (:func:`grid_size`)."""

        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            return None

    return Grid


def make_pruner(optuna: Any, space: SearchSpace, epochs: int) -> Any:
    """The section's pruner; Hyperband's budget is the most epochs a trial trains: the spec's
    ``training.epochs``, or the largest a search of it draws."""
    if space.pruner == "none":
        return optuna.pruners.NopPruner()
    if space.pruner == "hyperband":
        drawn = [
            int(value)
            for d in space.dimensions
            if d.target == ("training", "epochs")
            for value in d.candidates()
            if isinstance(value, (int, float)) and not isinstance(value, bool)
        ]
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, *drawn, 1))
    # the first 3 trials always finish (there is no median yet); later ones are judged every epoch
    return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)


def grid_size(space: SearchSpace) -> int:
    size = 1
    for d in space.dimensions:
        size *= len(grid_values(d))
    return size


def _categorical(value: Any) -> Any:
    """Optuna's categorical values are None, bool, int, float or str: others go as JSON text."""
    import json

    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value, sort_keys=True)


def categorical(value: Any) -> Any:
    return _categorical(value)


def from_categorical(value: Any, choices: tuple[Any, ...]) -> Any:
    """The choice a categorical value stands for."""
    for choice in choices:
        if _categorical(choice) == value and type(_categorical(choice)) is type(value):
            return choice
    return value
