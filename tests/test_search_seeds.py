"""The samplers' seeds: workers that share a study never draw the same values, and a lone
seeded search draws what it always drew.

Two copies of one ``cnnspec search`` command started together against a new study each read
"no trials yet" and, as worker 0, seeded their samplers alike: both drew the same values, trial
after trial. A worker's sampler is now keyed by a trial number the storage handed it alone
(:mod:`cnnspec.search.seeding`)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, start_python
from tests.test_search import SPEC, optuna

#: A worker process without TensorFlow: each trial suggests its values and is told at once. Every
#: worker waits, once it has opened the study and read its size, until all have (then all start
#: from the same count, as commands started together do), and in its first trial until all have
#: asked one (then each runs a trial, whoever is quicker). argv: spec, out, storage ("" for the
#: journal), the folder where the workers say so, the number of workers, the trials.
WORKER = """
import os, sys, time
from pathlib import Path
from cnnspec.search import worker
from cnnspec.search.worker import WorkerConfig, run_worker

spec, out, storage, marks, workers, trials = sys.argv[1:]
marks = Path(marks)

def all_say(what):
    (marks / f"{what}-{os.getpid()}").touch()
    deadline = time.monotonic() + 120
    while len(list(marks.glob(f"{what}-*"))) < int(workers):
        if time.monotonic() > deadline:
            sys.exit(f"timed out: not every worker {what}")
        time.sleep(0.02)

def run_trial(cfg, compiled, space, study, trial):
    values = {d.name: worker.suggest(trial, d) for d in space.dimensions}
    if not list(marks.glob(f"asked-{os.getpid()}")):
        all_say("asked")
    study.tell(trial, 0.5)
    return f"trial {trial.number}"

worker.run_trial = run_trial
worker._quiet_tensorflow = lambda: all_say("opened")  # (called right after opening the study)
config = WorkerConfig(
    spec=Path(spec), out=Path(out), study_name="tiny_search", trials=int(trials),
    storage=storage or None, quiet=True,
)
sys.exit(run_worker(config))
"""


#: What a WORKER process imports before it opens the study: the preload of the server it is
#: forked from (tests/script_runner.py), so that each worker is a process of its own that need
#: not import them again (about a second of CPU each).
WORKER_PRELOAD = ("optuna", "sqlalchemy", "cnnspec.search.worker", "cnnspec.search.study")


def worker_process(script: Path, *args: str, **popen) -> Any:
    """``python script args…`` as a process of its own that has imported WORKER_PRELOAD, this
    checkout's cnnspec (on PYTHONPATH, before what the venv installed): a fork of a server of
    that preload and environment, started once (tests/script_runner.py)."""
    paths = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    return start_python(script, *args, cwd=ROOT, env=env, preload=WORKER_PRELOAD, env_server=True, **popen)


def start_workers(spec: Path, outs: list[Path], storage: str | None, trials: int) -> None:
    """A worker process for each of ``outs`` on one study (one ``--out`` named twice: copies of
    one command on one machine; two: on two machines), each asking once all have opened it;
    they must all end well. Each is a fork of a server that has imported WORKER_PRELOAD
    (:func:`worker_process`)."""
    from cnnspec.search.runner import out_folder

    for out in set(outs):
        out_folder(out)
    marks = Path(tempfile.mkdtemp(dir=outs[0].parent, prefix="marks-"))
    script = marks.parent / f"worker-{marks.name}.py"
    script.write_text(WORKER, encoding="utf-8")
    shared = [storage or "", str(marks), str(len(outs)), str(trials)]
    procs = [
        worker_process(script, str(spec), str(out), *shared, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for out in outs
    ]
    outputs = [proc.communicate(timeout=300)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * len(outs), outputs


def first_values_by_worker(study) -> dict[int, tuple]:
    """The values of each worker process's first trial, by its PID."""
    first: dict[int, tuple] = {}
    for t in sorted(study.get_trials(), key=lambda t: t.number):
        first.setdefault(t.user_attrs["pid"], tuple(sorted(t.params.items())))
    return first


def check_apart(study, workers: int, trials: int, extra: int = 0) -> None:
    """Every worker ran trials, no two of them began with the same values, and no trial of the
    study repeats another's (``extra``: trials workers on other machines may start beyond)."""
    found = study.get_trials()
    assert trials <= len(found) <= trials + extra, len(found)
    assert all(t.state.name == "COMPLETE" for t in found)
    first = first_values_by_worker(study)
    assert len(first) == workers, f"expected every worker to run a trial: {first}"
    assert len(set(first.values())) == workers, first
    params = [tuple(sorted(t.params.items())) for t in found]
    assert len(set(params)) == len(params), params


def with_sampler(sampler: str) -> str:
    """The test spec searched by ``sampler`` (seed 3)."""
    return SPEC.replace("pruner: none", f"pruner: none\n  sampler: {sampler}")


def spec_with(write_spec, sampler: str) -> Path:
    return write_spec(with_sampler(sampler))


def compiled_space(sampler: str):
    from cnnspec.analysis.passes import compile_text

    return compile_text(with_sampler(sampler), "s.yaml").search


def values(study, space) -> tuple:
    """The values of a new trial of ``study`` (told at once)."""
    from cnnspec.search.worker import suggest

    trial = study.ask()
    drawn = tuple(suggest(trial, d) for d in space.dimensions)
    study.tell(trial, 0.5)
    return drawn


def worker_study(storage, space, existing: int, index: int = 0):
    from cnnspec.search.study import make_sampler

    return optuna.create_study(
        storage=storage,
        study_name="s",
        sampler=make_sampler(optuna, space, index, existing),
        direction="maximize",
        load_if_exists=True,
    )


@pytest.mark.parametrize("sampler", ["tpe", "random"])
@pytest.mark.parametrize("before", [0, 3])
def test_workers_that_opened_a_study_together_are_keyed_by_their_own_trials(sampler, before):
    """Two workers (index 0 both, as two copies of a command) open a study of ``before`` trials,
    then ask in turn: each is keyed by the first trial it got, so their values differ."""
    space = compiled_space(sampler)
    storage = optuna.storages.InMemoryStorage()
    lone = worker_study(storage, space, 0)
    for _ in range(before):
        values(lone, space)
    a, b = worker_study(storage, space, before), worker_study(storage, space, before)
    drawn = [values(a, space), values(b, space), values(a, space), values(b, space)]
    assert (a.sampler.key, b.sampler.key) == (before, before + 1)
    assert len(set(drawn)) == 4, drawn


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_a_lone_seeded_search_draws_what_it_drew_before_workers_were_keyed(
    monkeypatch, write_spec, tmp_path, sampler
):
    """A single worker, started and then continued, draws the very values Optuna's own sampler
    seeded as before draws (seed + 0 in a new study; then the seed keyed by the study's size),
    past TPE's startup trials too: seeded searches reproduce as they did."""
    from cnnspec.search.seeding import sampler_seed
    from cnnspec.search.worker import suggest
    from tests.test_search import fake_trials, params_of, run_fake_search

    fake_trials(monkeypatch, value=lambda params: params["drop.rate"])
    out = tmp_path / "o"
    spec = spec_with(write_spec, sampler)
    for total in (3, 14):
        run_fake_search(spec, out, total)
    space = compiled_space(sampler)
    kind = optuna.samplers.TPESampler if sampler == "tpe" else optuna.samplers.RandomSampler
    study = optuna.create_study(direction="maximize")
    for start, end in ((0, 3), (3, 14)):
        study.sampler = kind(seed=sampler_seed(3, 0, start))
        for _ in range(start, end):
            trial = study.ask()
            drawn = {d.name: suggest(trial, d) for d in space.dimensions}
            study.tell(trial, drawn["drop.rate"])
    assert params_of(out) == [tuple(sorted(t.params.items())) for t in study.get_trials()]


def test_a_retry_enqueued_after_opening_and_taken_first_keeps_the_lone_key():
    """The trial numbered as the study's size at opening was an enqueued retry this worker took
    itself (no values drawn): no other worker holds that number, so the seed stays the one a
    lone worker always had."""
    from cnnspec.search.seeding import sampler_seed

    space = compiled_space("random")
    storage = optuna.storages.InMemoryStorage()
    first = worker_study(storage, space, 0)
    values(first, space)
    values(first, space)
    study = worker_study(storage, space, 2)
    study.enqueue_trial(study.trials[0].params)  # trial 2, after this worker opened the study
    retry = study.ask()
    assert retry.number == 2 and study.sampler.key is None  # (its values are the retried trial's)
    study.tell(retry, 0.5)
    drawn = values(study, space)
    assert study.sampler.key == 2
    reference = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=sampler_seed(3, 0, 2)))
    assert drawn == values(reference, space)


def test_an_unseeded_sampler_has_no_key():
    space = dataclasses.replace(compiled_space("tpe"), seed=None)
    study = worker_study(optuna.storages.InMemoryStorage(), space, 0)
    values(study, space)
    assert study.sampler.key is None


@pytest.mark.slow  # worker processes (forks of a server that imported cnnspec and Optuna)
@pytest.mark.parametrize("storage", ["journal", "sqlite"])
def test_two_copies_of_a_command_started_together_draw_different_values(write_spec, tmp_path, storage):
    """Both read an empty study as worker 0: their samplers were seeded alike, and each trial of
    one repeated a trial of the other."""
    url = f"sqlite:///{tmp_path}/study.db" if storage == "sqlite" else None
    out = tmp_path / "search"
    start_workers(spec_with(write_spec, "random"), [out, out], url, trials=6)
    from cnnspec.search.study import open_storage

    check_apart(optuna.load_study(study_name="tiny_search", storage=open_storage(url, out)), 2, 6)


@pytest.mark.slow
def test_two_copies_of_a_command_joining_a_continued_study_together_draw_different_values(
    write_spec, tmp_path
):
    """The same with trials in the study already: both read the same count."""
    from tests.test_search import fake_trials, run_fake_search

    spec = spec_with(write_spec, "tpe")
    out = tmp_path / "search"
    monkeypatch = pytest.MonkeyPatch()
    with monkeypatch.context() as patched:
        fake_trials(patched)
        run_fake_search(spec, out, 2)
    start_workers(spec, [out, out], None, trials=8)
    from cnnspec.search.study import open_storage

    study = optuna.load_study(study_name="tiny_search", storage=open_storage(None, out))
    later = [t for t in study.get_trials() if t.number >= 2]
    assert len({t.user_attrs["pid"] for t in later}) == 2
    params = [tuple(sorted(t.params.items())) for t in study.get_trials()]
    assert len(set(params)) == len(params), params
