"""runtime.distribute: strategies, the cluster options, and two real workers on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cnnspec.analysis.settings import training_config
from cnnspec.api import compile_text
from cnnspec.cli.app import app
from cnnspec.errors import SpecError, UsageError
from cnnspec.training.distribute import (
    Distribution,
    await_workers,
    choose_jit,
    cluster_tf_config,
    parse_cluster,
    planned_chief,
    read_tf_config,
)
from tests.conftest import start_python

TINY = """\
cnnspec: 1
name: tiny_distribute
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}
  - global_avg_pool2d
  - dense: {units: 10, activation: softmax}
data: {source: digits, limit: 96}
"""
CNNSPEC = str(Path(sys.executable).with_name("cnnspec"))


# -- fast: settings and the cluster, no TensorFlow ------------------------------------------------


def test_distribute_setting_forms():
    assert training_config(compile_text(TINY)).distribute == "default"
    config = training_config(compile_text(TINY + "runtime: {distribute: mirrored}\n"))
    assert config.distribute == "mirrored"
    config = training_config(
        compile_text(TINY + "runtime: {distribute: {strategy: multi_worker, startup_timeout: 30}}\n")
    )
    assert (config.distribute, config.startup_timeout) == ("multi_worker", 30.0)


def test_unknown_strategy_is_a_located_error():
    with pytest.raises(SpecError) as info:
        compile_text(TINY + "runtime: {distribute: mirored}\n")
    assert "runtime.distribute" in str(info.value)


def test_parse_cluster():
    assert parse_cluster("127.0.0.1:2222, 127.0.0.1:2223") == ["127.0.0.1:2222", "127.0.0.1:2223"]
    for bad in ("127.0.0.1", "host:0", "a:1,a:1", "", "host:99999"):
        with pytest.raises(UsageError):
            parse_cluster(bad)


def test_tf_config_and_chief(monkeypatch):
    cluster = ["127.0.0.1:1", "127.0.0.1:2"]
    assert cluster_tf_config(cluster, 1)["task"] == {"type": "worker", "index": 1}
    with pytest.raises(UsageError, match="task-index"):
        cluster_tf_config(cluster, 2)
    assert planned_chief("multi_worker", cluster, 0) and not planned_chief("multi_worker", cluster, 1)
    assert planned_chief("mirrored", None, None)
    with pytest.raises(UsageError, match="multi_worker with --cluster"):
        planned_chief("default", cluster, 0)
    chief_job = {"cluster": {"chief": ["h:1"], "worker": ["h:2"]}, "task": {"type": "worker", "index": 0}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(chief_job))
    assert not planned_chief("multi_worker", None, None)  # a "chief" job exists: worker 0 is not it
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(UsageError, match="TF_CONFIG"):
        read_tf_config()


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("[1]", "received a JSON list, not an object"),
        ('{"task": {"type": "worker", "index": 0}}', "it has no cluster"),
        ('{"cluster": {"worker": "x"}, "task": {}}', 'its task is no {"type": …, "index": …}'),
        (
            '{"cluster": {"worker": "x"}, "task": {"type": "worker", "index": 0}}',
            "no list of worker addresses",
        ),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}', "worker:1 is not in"),
        # TensorFlow's ClusterSpec raised TypeError on these: an internal error, exit 3
        (
            '{"cluster": {"worker": ["a:1"], "chief": "x"}, "task": {"type": "worker", "index": 0}}',
            'its cluster\'s chief is "x", not a list of host:port texts',
        ),
        ('{"cluster": {"worker": [7]}, "task": {"type": "worker", "index": 0}}', "worker is [7], not a list"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 0.7}}', "index is 0.7, not a"),
    ],
)
def test_a_tf_config_of_the_wrong_shape_says_what_is_wrong(monkeypatch, text, said):
    """Its KeyError or TypeError was the message: `'type'`, `list indices must be integers`."""
    monkeypatch.setenv("TF_CONFIG", text)
    with pytest.raises(UsageError) as caught:
        read_tf_config()
    assert str(caught.value).startswith("expected TF_CONFIG to be JSON with cluster and task; ")
    assert said in str(caught.value)


def test_a_tf_config_set_to_nothing_is_none_for_tensorflow_too(monkeypatch):
    """`export TF_CONFIG=` read as no cluster, but TensorFlow's strategy then parsed the empty
    value: an internal error (JSONDecodeError)."""
    from types import SimpleNamespace

    from cnnspec.training.distribute import _multi_worker

    seen = []

    def strategy():
        seen.append(os.environ.get("TF_CONFIG"))
        return SimpleNamespace(num_replicas_in_sync=1)

    monkeypatch.setenv("TF_CONFIG", "  ")
    fake_tf = SimpleNamespace(distribute=SimpleNamespace(MultiWorkerMirroredStrategy=strategy))
    notes: list[str] = []
    _multi_worker(fake_tf, notes, None, None, 1.0)
    assert seen == [None] and "no cluster given" in notes[0]


def test_cli_cluster_options_are_checked(runner, write_spec):
    spec = write_spec(TINY)
    result = runner.invoke(app, ["train", str(spec), "--task-index", "1"])
    assert result.exit_code == 2 and "--cluster" in result.output
    result = runner.invoke(app, ["train", str(spec), "--cluster", "127.0.0.1:5000,127.0.0.1:5001"])
    assert result.exit_code == 2 and "--task-index" in result.output
    result = runner.invoke(
        app, ["train", str(spec), "--cluster", "127.0.0.1:5000,127.0.0.1:5001", "--task-index", "0"]
    )
    assert result.exit_code == 2 and "multi_worker" in result.output


def test_xla_with_determinism_is_a_located_error_and_auto_picks_false_untimed():
    """Keras turns XLA off under op determinism (with a bare UserWarning): `true` is refused
    before the run, and `auto` records false without timing XLA."""
    deterministic = TINY + "training: {deterministic: true}\n"
    with pytest.raises(SpecError) as info:
        training_config(compile_text(deterministic + "runtime: {jit_compile: true}\n"))
    (error,) = info.value.errors
    assert error.path == "runtime.jit_compile" and error.loc.line == 10
    assert "training.deterministic" in error.message and "jit_compile: false" in error.hint
    config = training_config(compile_text(deterministic + "runtime: {jit_compile: auto}\n"))
    assert config.jit_auto and config.deterministic and not config.jit_compile

    def build(jit: bool) -> None:
        raise AssertionError("a deterministic run is not timed")

    choice = choose_jit("auto", build, None, Distribution(), [], deterministic=True)
    assert choice.describe() == {
        "setting": "auto",
        "chosen": False,
        "reason": "training.deterministic: op determinism has no XLA",
    }


@pytest.mark.slow
def test_xla_refused_for_multi_worker_on_cpu():
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("XLA collectives exist on GPUs")
    two = Distribution("multi_worker", strategy=object(), num_workers=2)
    with pytest.raises(UsageError, match="no collective ops for CPU"):
        choose_jit(True, None, None, two, [])  # type: ignore[arg-type]
    assert choose_jit("auto", None, None, two, []).chosen is False  # type: ignore[arg-type]


MULTI_JIT = (
    TINY
    + "training: {epochs: 1, batch_size: 32, seed: 6}\n"
    + "runtime:\n  jit_compile: true\n  distribute: {strategy: multi_worker, startup_timeout: 120}\n"
)


def test_xla_for_multi_worker_on_cpu_is_refused_at_the_spec_line(monkeypatch):
    """Said at runtime.jit_compile (file:line:column), from the cluster's size alone: no
    TensorFlow, no strategy, no wait for the other workers (it came after the cluster formed)."""
    from cnnspec.training import distribute

    monkeypatch.setattr(distribute, "_has_gpu", lambda: False)
    compiled = compile_text(MULTI_JIT, "t.yaml")
    with pytest.raises(UsageError, match="no collective ops for CPU") as raised:
        distribute.refuse_cpu_jit(compiled, True, "multi_worker", ["127.0.0.1:1", "127.0.0.1:2"])
    (located,) = raised.value.diagnostics
    assert located.path == "runtime.jit_compile" and str(located.loc) == "t.yaml:11:16"
    assert str(raised.value).startswith("t.yaml:11:16: expected jit_compile false or auto")
    assert "jit_compile: auto" in raised.value.hint
    # one worker (no collectives), auto, another strategy, or a GPU: nothing to refuse
    distribute.refuse_cpu_jit(compiled, True, "multi_worker", ["127.0.0.1:1"])
    distribute.refuse_cpu_jit(compiled, False, "multi_worker", ["127.0.0.1:1", "127.0.0.1:2"])
    distribute.refuse_cpu_jit(compiled, True, "mirrored", None)
    monkeypatch.setattr(distribute, "_has_gpu", lambda: True)
    distribute.refuse_cpu_jit(compiled, True, "multi_worker", ["127.0.0.1:1", "127.0.0.1:2"])


@pytest.mark.slow
def test_xla_for_multi_worker_on_cpu_is_refused_before_the_cluster_wait(tmp_path, monkeypatch):
    """train refuses it at once, its worker 1 never started (a startup_timeout of 120 s), and
    leaves no run folder."""
    from cnnspec.training import distribute
    from cnnspec.training.trainer import train

    monkeypatch.setattr(distribute, "_has_gpu", lambda: False)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    started = time.monotonic()
    with pytest.raises(UsageError, match="no collective ops for CPU") as raised:
        train(
            compile_text(MULTI_JIT, "t.yaml"),
            out=tmp_path / "run",
            cluster=[f"127.0.0.1:{port}" for port in free_ports(2)],
            task_index=0,
        )
    assert time.monotonic() - started < 60
    assert raised.value.diagnostics[0].path == "runtime.jit_compile"
    assert not (tmp_path / "run").exists() and "TF_CONFIG" not in os.environ


# -- strategies on this machine -------------------------------------------------------------------


# (`distribute: mirrored` without a GPU trains on the CPU, with a note and one replica in lock.json:
# test_mixing.py's run under mirrored says so, as it trains under the strategy anyway)
@pytest.mark.slow
def test_tpu_without_one_is_an_error(tmp_path):
    import tensorflow as tf

    from cnnspec.training.trainer import train

    if tf.config.list_physical_devices("TPU"):
        pytest.skip("this machine has a TPU")
    spec = TINY + "training: {epochs: 1, batch_size: 32, seed: 2}\n"
    with pytest.raises(UsageError, match="expected a TPU") as raised:
        train(compile_text(spec + "runtime: {distribute: tpu}\n"), out=tmp_path / "tpu")
    (located,) = raised.value.diagnostics  # at the spec's line (it was unlocated)
    assert located.path == "runtime.distribute" and located.loc is not None


@pytest.mark.parametrize(
    ("runtime", "path", "hint"),
    [
        ("runtime: {distribute: tpu}\n", "runtime.distribute", "use distribute: mirrored (GPUs)"),
        (
            "runtime:\n  distribute: {strategy: tpu}\n",
            "runtime.distribute.strategy",
            "use strategy: mirrored",
        ),
    ],
)
def test_no_tpu_is_said_at_the_spec_line_in_the_form_it_is_written(runtime, path, hint):
    """The refusal had no file:line:col and hinted `strategy: mirrored` for a spec writing
    `distribute: tpu`."""
    from cnnspec.training.distribute import no_tpu

    text = TINY + "training: {epochs: 1}\n" + runtime
    error = no_tpu(compile_text(text, "t.yaml"))
    (located,) = error.diagnostics
    assert located.path == path and located.loc is not None and located.loc.file == "t.yaml"
    assert located.loc.line == text.count("\n", 0, text.index("tpu")) + 1
    assert error.hint is not None and error.hint.startswith(hint)
    assert str(error).startswith(f"{located.loc}: expected a TPU")


# -- two workers on 127.0.0.1 ---------------------------------------------------------------------


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def lone_config(ports: list[int], task_index: int = 0) -> dict:
    return cluster_tf_config([f"127.0.0.1:{port}" for port in ports], task_index)


def test_await_workers_returns_once_every_other_worker_listens():
    ports = free_ports(2)
    with socket.create_server(("127.0.0.1", ports[1])):  # worker 1, started
        started = time.monotonic()
        await_workers(lone_config(ports), startup_timeout=5)
    assert time.monotonic() - started < 2


def test_await_workers_names_the_worker_that_did_not_join_after_the_timeout():
    from cnnspec.training.distribute import ClusterError

    ports = free_ports(2)
    started = time.monotonic()
    with pytest.raises(ClusterError) as raised:
        await_workers(lone_config(ports, 1), startup_timeout=0.5)
    assert 0.5 <= time.monotonic() - started < 3
    assert str(raised.value) == (
        f"the cluster did not form within 0.5 s: worker 0 at 127.0.0.1:{ports[0]} did not join"
    )
    assert "startup_timeout" in raised.value.hint


def test_a_busy_port_of_this_worker_is_a_usage_error_naming_its_address():
    """Another process on this worker's port: said at once as such (exit 2), not after the
    timeout as "the cluster did not form ... Could not start gRPC server" (exit 75, "try again")."""
    ports = free_ports(2)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", ports[0]))
        started = time.monotonic()
        with pytest.raises(UsageError) as raised:
            await_workers(lone_config(ports), startup_timeout=30)
    assert time.monotonic() - started < 1
    message = str(raised.value)
    assert f"worker 0 to listen on its address 127.0.0.1:{ports[0]}" in message
    assert "Address already in use" in message
    assert f"port {ports[0]} is in use" in raised.value.hint and "free port" in raised.value.hint


@pytest.fixture
def processes():
    """Every worker a test starts; any still running at the end is killed."""
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def start_workers(spec: Path, out: Path, scratch: Path, *extra: str) -> list[subprocess.Popen]:
    cluster = ",".join(f"127.0.0.1:{port}" for port in free_ports(2))
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", TMPDIR=str(scratch))
    return [
        subprocess.Popen(
            [CNNSPEC, "train", str(spec), *extra, "--cluster", cluster, "--task-index", str(index)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=spec.parent,
        )
        for index in range(2)
    ]


def finish(processes: list[subprocess.Popen], timeout: float) -> list[tuple[int, str, str]]:
    out = []
    for process in processes:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for other in processes:
                other.kill()
            raise
        out.append((process.returncode, stdout, stderr))
    return out


@pytest.mark.slow
# several TensorFlow worker processes: never beside the other multi-process tests of group
# "workers" on 2 cores, where their timeouts (a stalled worker is the failure) would be load
@pytest.mark.xdist_group("workers")
# four TensorFlow processes and a heartbeat timeout (about 25 s of CPU, 30-40 s of wall): part of
# `make test-multiworker` (in `make test-full`), not of `make test`'s 10 minutes
@pytest.mark.skipif(
    not os.environ.get("CNNSPEC_MULTIWORKER"),
    reason="losing a worker and resuming runs in `make test-multiworker` (make test-full)",
)
def test_two_workers_lose_one_then_resume(tmp_path, processes):
    """Both workers train in lockstep; SIGKILL one and the chief stops within bounded time
    (coordination-service heartbeats), then both resume and finish with identical weights."""
    started = time.monotonic()
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        TINY.replace("limit: 96", "limit: 64, validation_split: 0")
        + "training: {epochs: 2, batch_size: 32, seed: 6}\nruntime: {distribute: multi_worker}\n"
    )
    out, scratch = tmp_path / "run", tmp_path / "scratch"
    scratch.mkdir()
    chief, worker = start_workers(spec, out, scratch, "--out", str(out))
    processes += [chief, worker]
    deadline = time.monotonic() + 180
    while not (out / "state" / "epoch-0001.json").exists():
        assert chief.poll() is None and worker.poll() is None, finish([chief, worker], 10)
        assert time.monotonic() < deadline, "no epoch finished"
        time.sleep(0.05)
    worker.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    [(code, _, stderr), _] = finish([chief, worker], timeout=90)  # bounded: no hang
    assert code == 75, stderr
    assert time.monotonic() - killed < 60
    message = " ".join(stderr.split())
    assert "another worker of the cluster failed" in message and f"--resume {out}" in message
    assert not (out / "metrics.json").exists()
    left_by_the_killed_worker = set(scratch.iterdir())  # SIGKILL leaves no time to clean up

    resumed = start_workers(spec, out, scratch, "--resume", str(out))
    processes += resumed
    results = finish(resumed, timeout=240)
    assert [r[0] for r in results] == [0, 0], results
    expected = {"spec.yaml", "resolved.yaml", "lock.json", "model.keras", "metrics.json", "history.json"}
    assert expected <= {p.name for p in out.iterdir()} and not (out / "state").exists()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs_run"] == 2 and metrics["resumed_from_epoch"] in (1, 2)
    assert json.loads((out / "history.json").read_text())["epoch"] == [1, 2]
    lock = json.loads((out / "lock.json").read_text())
    assert lock["distribute"]["workers"] == 2 and lock["distribute"]["replicas"] == 2
    # the non-chief reports the digest of its own final weights: the same as the chief's
    assert f"weights sha256 {metrics['weights_sha256']}" in results[1][1]
    assert set(scratch.iterdir()) == left_by_the_killed_worker  # the resumed worker cleaned up
    print(f"multi-worker kill + resume test: {time.monotonic() - started:.1f}s")


def start_alone(spec: Path, out: Path, task_index: int) -> tuple[subprocess.Popen, list[int]]:
    """One worker of a two-worker cluster whose other worker never starts."""
    ports = free_ports(2)
    cluster = ",".join(f"127.0.0.1:{port}" for port in ports)
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", TMPDIR=str(spec.parent))
    command = [CNNSPEC, "train", str(spec), "--out", str(out), "--cluster", cluster]
    process = start_python(
        *command,
        "--task-index",
        str(task_index),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=spec.parent,
    )
    return process, ports


def alone_spec(tmp_path: Path, startup_timeout: float) -> Path:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        TINY
        + "training: {epochs: 1, batch_size: 32, seed: 6}\n"
        + f"runtime: {{distribute: {{strategy: multi_worker, startup_timeout: {startup_timeout}}}}}\n"
    )
    return spec


#: What one lone worker of :func:`lone_workers` did: exit status, stderr, its cluster's ports,
#: seconds from its start to its end, and the run folder it was given.
Lone = tuple[int, str, list[int], float, Path]
#: A chief of :func:`lone_workers` still waiting for its cluster (for Ctrl-C or SIGTERM): the
#: process, its cluster's ports, its run folder, and when it was first seen listening
#: (time.monotonic()).
Waiting = tuple[subprocess.Popen, list[int], Path, float]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float) -> None:
    """Until ``process`` listens on ``port`` (the cluster wait has begun)."""
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, finish([process], 10)
        assert time.monotonic() < deadline, "the worker never started its server"
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)


@pytest.fixture(scope="module")
def lone_workers(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[dict[int, Lone], dict[int, Waiting]]]:
    """Four workers each alone in a two-worker cluster of its own, started at once: the chief
    and worker 1 of a startup_timeout of 1 s, run to their end, and two chiefs of 120 s left
    waiting for the Ctrl-C and SIGTERM tests (keyed by the signal). All four spend their time
    waiting (the startup timeout, the cluster), so the waits overlap instead of adding up (the
    signal tests waited 2 s more of their own)."""
    started = time.monotonic()
    lone: dict[int, tuple[subprocess.Popen, list[int], Path]] = {}
    waiting: dict[int, Waiting] = {}
    try:
        for task_index in (0, 1):
            folder = tmp_path_factory.mktemp(f"alone{task_index}")
            out = folder / "run"
            # the smallest timeout the spec allows: the test waits it out
            process, ports = start_alone(alone_spec(folder, 1), out, task_index)
            lone[task_index] = (process, ports, out)
        for number in (signal.SIGINT, signal.SIGTERM):
            folder = tmp_path_factory.mktemp(f"signal{int(number)}")
            chief, chief_ports = start_alone(alone_spec(folder, 120), folder / "run", 0)
            waiting[number] = (chief, chief_ports, folder / "run", 0.0)
        for number, (chief, chief_ports, out, _) in waiting.items():
            wait_for_port(chief_ports[0], chief, timeout=90)
            waiting[number] = (chief, chief_ports, out, time.monotonic())
        results: dict[int, Lone] = {}
        for task_index, (process, ports, out) in lone.items():  # (the chief ends first)
            [(code, _, stderr)] = finish([process], timeout=90)  # bounded: a regression fails, not hangs
            results[task_index] = (code, stderr, ports, time.monotonic() - started, out)
        yield results, waiting
    finally:
        for process in [*(entry[0] for entry in lone.values()), *(entry[0] for entry in waiting.values())]:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.xdist_group("workers")
@pytest.mark.parametrize("task_index", [0, 1])
def test_a_cluster_that_never_forms_stops_after_startup_timeout(lone_workers, task_index):
    """The chief whose worker 1 never starts, and worker 1 whose chief never starts, stop with
    a ClusterError naming the missing worker after about startup_timeout (no endless wait)."""
    from cnnspec.cli.train import EXIT_CLUSTER

    code, stderr, ports, elapsed, out = lone_workers[0][task_index]
    message = " ".join(stderr.split())
    assert code == EXIT_CLUSTER, stderr
    missing = 1 - task_index
    assert f"the cluster did not form within 1 s: worker {missing} at 127.0.0.1:{ports[missing]} " in message
    assert "did not join" in message and "--task-index" in message
    assert not out.exists()  # the chief's new folder is removed again; worker 1 never made one
    assert elapsed < 60, elapsed
    print(f"worker {task_index} alone: exit {code} after {elapsed:.1f}s")


@pytest.mark.slow
@pytest.mark.xdist_group("workers")
@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_ends_the_wait_for_the_cluster(lone_workers, number):
    """Ctrl-C and SIGTERM end the wait for the other workers at once, as they end the rest of
    train ("interrupted", 130), and leave no run folder. (TensorFlow's own wait holds the GIL
    and replaces the SIGTERM handler: SIGTERM did nothing until startup_timeout ran out, and
    Ctrl-C, by the signal's default action, left the folder holding a stale lock file.)"""
    process, ports, out, listening = lone_workers[1][number]
    wait_for_port(ports[0], process, timeout=90)  # (still waiting: its startup_timeout is 120 s)
    time.sleep(max(0.0, 2 - (time.monotonic() - listening)))  # in the wait for 2 s at least
    process.send_signal(number)
    sent = time.monotonic()
    [(code, _, stderr)] = finish([process], timeout=30)
    assert code == 130, stderr
    assert stderr.strip().endswith("interrupted"), stderr
    assert time.monotonic() - sent < 5
    assert not out.exists()


def test_a_cluster_on_the_command_line_says_it_replaces_the_environments_tf_config(monkeypatch):
    """--cluster replaced a TF_CONFIG the environment also set, without a word: a note says so
    now (and nothing where the environment sets none, or an empty one)."""
    from cnnspec.training.distribute import overridden_tf_config_note

    monkeypatch.setenv(
        "TF_CONFIG",
        json.dumps({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}),
    )
    assert overridden_tf_config_note() == (
        "multi_worker: --cluster and --task-index are used; the TF_CONFIG set in the environment is not"
    )
    for unset in ("", "  "):
        monkeypatch.setenv("TF_CONFIG", unset)
        assert overridden_tf_config_note() is None
    monkeypatch.delenv("TF_CONFIG")
    assert overridden_tf_config_note() is None
