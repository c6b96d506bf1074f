"""``runtime.distribute``: TensorFlow's own ``tf.distribute`` strategies for a training run.

- ``default`` — no strategy (TensorFlow's default placement); the behaviour of a plain run.
- ``one_device`` — ``OneDeviceStrategy`` on the first GPU, else the CPU.
- ``mirrored`` — ``MirroredStrategy`` over every local GPU (synchronous data parallelism);
  on a machine without GPUs it falls back to the CPU with a one-line notice.
- ``multi_worker`` — ``MultiWorkerMirroredStrategy``: synchronous data parallelism across
  processes or machines, gradients all-reduced by TensorFlow's collective ops. The cluster comes
  from ``TF_CONFIG`` or from ``cnnspec train … --cluster host:port,host:port --task-index N``.
- ``tpu`` — ``TPUStrategy`` on a local TPU; without one, a clear error.

The batch size is *global*: each of R replicas gets ``batch_size / R`` images per step, and
the learning rate is used as written (not scaled with R). The model and its optimizer are
built inside the strategy's scope; in-memory datasets are sharded by data
(``AutoShardPolicy.DATA``: there are no files to shard by), every worker shuffling with the
same seed, and streamed sources by file (:meth:`Distribution.shard_files`: each worker reads
only its part of the training, validation and test files).

Multi-worker runs: only the chief (task ``chief``, or ``worker`` 0) writes the run folder;
the other workers write the same files into a temporary folder that is removed at the end.
A worker that dies is noticed through TensorFlow's coordination service (heartbeats): the
others stop with :class:`ClusterError` within about :data:`HEARTBEAT_TIMEOUT_S` seconds, and
every worker restarts with ``--resume RUN_DIR`` (the run folder must be readable by every
worker: a shared filesystem, as for Keras' ``BackupAndRestore``).

Keras 3.15 and ``MultiWorkerMirroredStrategy``: ``fit`` fails in two places with more than one
worker (keras-team/keras#20585): the symbolic build reduces a nested batch, and per-step logs
(scalars) are reduced along axis 0. :func:`prepare_model` works around both for multi-worker
models only; with one worker Keras runs unchanged.

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnspec.errors import UsageError
from cnnspec.spec.sections import STRATEGIES as SCHEMA_STRATEGIES

if TYPE_CHECKING:
    from cnnspec.analysis.compiled import CompiledSpec

STRATEGIES = tuple(SCHEMA_STRATEGIES)
#: A worker that stops sending heartbeats for this long is declared dead by the others.
HEARTBEAT_TIMEOUT_S = 10
#: How long a worker waits for the whole cluster to come up before giving up (default).
STARTUP_TIMEOUT_S = 300
_ADDRESS = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.\-]+):(\d{1,5})$")


class ClusterError(Exception):
    """A multi-worker run lost a worker (or never formed): the run stops instead of hanging."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


# -- the cluster ----------------------------------------------------------------------------------


def parse_cluster(text: str) -> list[str]:
    """``host:port,host:port`` → addresses; a malformed one is a :class:`UsageError`."""
    addresses = [part.strip() for part in text.split(",") if part.strip()]
    if not addresses:
        raise UsageError("expected --cluster host:port,host:port; received nothing")
    for address in addresses:
        match = _ADDRESS.match(address)
        if match is None or not 0 < int(match.group(2)) < 65536:
            raise UsageError(
                f"expected host:port in --cluster; received {address!r}",
                "for example --cluster 127.0.0.1:2222,127.0.0.1:2223",
            )
    if len(set(addresses)) != len(addresses):
        raise UsageError(f"expected distinct addresses in --cluster; received {text!r}")
    return addresses


def cluster_tf_config(cluster: list[str], task_index: int) -> dict[str, Any]:
    """The ``TF_CONFIG`` of worker ``task_index`` in a cluster of equal workers (0 is chief)."""
    if not 0 <= task_index < len(cluster):
        raise UsageError(
            f"expected --task-index between 0 and {len(cluster) - 1}; received {task_index}",
            "each worker of the cluster is started with its own index; worker 0 is the chief",
        )
    return {"cluster": {"worker": list(cluster)}, "task": {"type": "worker", "index": task_index}}


def read_tf_config() -> dict[str, Any] | None:
    """``TF_CONFIG`` from the environment, checked; ``None`` when unset or empty."""
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return None
    try:
        config = json.loads(text)
        if not isinstance(config, dict):
            raise ValueError(f"received a JSON {type(config).__name__}, not an object")
        missing = [key for key in ("cluster", "task") if key not in config]
        if missing:
            raise ValueError(f"it has no {' and no '.join(missing)}")
        cluster, task = config["cluster"], config["task"]
        if not isinstance(task, dict) or "type" not in task or "index" not in task:
            raise ValueError('its task is no {"type": …, "index": …}')
        kind, index = str(task["type"]), task["index"]
        if isinstance(index, bool) or not isinstance(index, int):  # (0.7 was taken as 0)
            raise ValueError(f"its task's index is {json.dumps(index)}, not a whole number")
        if not isinstance(cluster, dict) or not isinstance(cluster.get(kind), list):
            raise ValueError(f"its cluster has no list of {kind} addresses")
        for job, addresses in cluster.items():  # TensorFlow's ClusterSpec raised TypeError on these
            if not isinstance(addresses, list) or not all(isinstance(a, str) and a for a in addresses):
                raise ValueError(
                    f"its cluster's {job} is {json.dumps(addresses)}, not a list of host:port texts"
                )
        if not 0 <= index < len(cluster[kind]):
            raise ValueError(f"task {kind}:{index} is not in the cluster")
    except (ValueError, TypeError) as exc:  # (json's errors are ValueErrors)
        raise UsageError(
            f"expected TF_CONFIG to be JSON with cluster and task; {exc}",
            'e.g. {"cluster": {"worker": ["host1:2222", "host2:2222"]}, "task": {"type": "worker", '
            '"index": 0}}',
        ) from None
    return config


def _is_chief(config: dict[str, Any]) -> bool:
    task = config["task"]
    if task["type"] == "chief":
        return True
    return task["type"] == "worker" and int(task["index"]) == 0 and "chief" not in config["cluster"]


def _workers(config: dict[str, Any]) -> int:
    return sum(len(config["cluster"].get(job, [])) for job in ("chief", "worker"))


# -- the distribution ----------------------------------------------------------------------------


@dataclass
class Distribution:
    """The strategy of a run and this process's place in it."""

    setting: str = "default"
    strategy: Any = None
    is_chief: bool = True
    task: str | None = None
    num_workers: int = 1
    replicas: int = 1
    devices: list[str] = field(default_factory=list)
    cluster: dict[str, list[str]] | None = None
    scratch: Path | None = None

    @property
    def multi_worker(self) -> bool:
        """More than one worker process: collective ops cross process boundaries."""
        return self.setting == "multi_worker" and self.num_workers > 1

    def scope(self) -> Any:
        """The strategy's scope (a no-op for ``default``)."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def describe(self) -> dict[str, Any]:
        """JSON-ready description for ``lock.json``."""
        out: dict[str, Any] = {
            "strategy": self.setting,
            "replicas": self.replicas,
            "workers": self.num_workers,
            "devices": self.devices,
        }
        if self.cluster is not None:
            out["cluster"] = self.cluster
            out["task"] = self.task
        return out

    def shard(self, dataset: Any) -> Any:
        """``dataset`` with the auto-shard policy for this strategy (DATA: in-memory arrays)."""
        if self.strategy is None:
            return dataset
        import tensorflow as tf

        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return dataset.with_options(options)

    def shard_files(self, make: Callable[[int, tuple[int, int] | None], Any], batch_size: int) -> Any:
        """A streamed training dataset of which each worker reads only its part of the files.

        ``make(batch_size, shard)`` builds the pipeline; ``shard`` is ``(count, index)`` (every
        ``count``-th file from ``index``: disjoint parts that cover every file, so each image is
        read once per epoch across the workers) or ``None`` outside a multi-worker cluster.
        Under ``multi_worker`` each worker builds its own pipeline at the per-replica batch
        size (``distribute_datasets_from_function``, which Keras' ``fit`` takes as it is).
        """
        if not self.multi_worker:
            return self.shard(make(batch_size, None))
        import tensorflow as tf

        def per_worker(context: Any) -> Any:
            dataset = make(
                context.get_per_replica_batch_size(batch_size),
                (context.num_input_pipelines, context.input_pipeline_id),
            )
            options = tf.data.Options()  # sharded here, by file: nothing more to auto-shard
            options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
            return dataset.with_options(options)

        return self.strategy.distribute_datasets_from_function(per_worker)

    def file_shard_order(self, total: int, batch_size: int) -> list[int]:
        """The file index of each row that ``predict`` returns over a :meth:`shard_files` dataset
        of ``total`` files (every row read once, none dropped).

        Each step, every replica gets the next batch of its worker's part (cut as
        :func:`~cnnspec.training.stream.shard_batches` says; a worker's local replicas in turn),
        and Keras concatenates the replicas' outputs local replica by local replica, worker by
        worker (``_multi_worker_concat``).
        """
        from cnnspec.training.stream import shard_batches

        workers = max(self.num_workers, 1)
        local = max(self.replicas // workers, 1)
        per_replica = max(batch_size // (workers * local), 1)
        batches: list[list[list[int]]] = []
        for worker in range(workers):
            part, start, cut = list(range(total))[worker::workers], 0, []
            for size in shard_batches(total, workers, worker, per_replica):
                cut.append(part[start : start + size])
                start += size
            batches.append(cut)
        order: list[int] = []
        for step in range(-(-max(len(cut) for cut in batches) // local)):
            for replica in range(local):
                for cut in batches:
                    if step * local + replica < len(cut):
                        order += cut[step * local + replica]
        return order

    def summary(self) -> str:
        """``", strategy mirrored (1 replica)"`` for the start line; empty for ``default``."""
        if self.strategy is None:
            return ""
        task = (self.task or "").replace(":", " ")
        where = f", {task} of {self.num_workers}" if self.cluster is not None else ""
        chief = " (chief)" if self.cluster is not None and self.is_chief else ""
        plural = "s" if self.replicas != 1 else ""
        return f", strategy {self.setting} ({self.replicas} replica{plural}{where}{chief})"

    def from_chief(self, value: int) -> int:
        """The chief's ``value`` on every worker (an all-reduce in which the others add 0)."""
        if not self.multi_worker:
            return value
        import tensorflow as tf

        mine = tf.constant(value if self.is_chief else 0, dtype=tf.int64)
        return int(self.strategy.reduce("SUM", mine, axis=None).numpy())

    def mean_across_workers(self, values: list[float]) -> list[float]:
        """The mean of ``values`` over every worker (an all-reduce); unchanged with one worker."""
        if not self.multi_worker:
            return list(values)
        import tensorflow as tf

        reduced = self.strategy.reduce("MEAN", tf.constant(values, dtype=tf.float64), axis=None)
        return [float(v) for v in reduced.numpy()]

    def work_dir(self, run_dir: Path) -> Path:
        """Where this process writes: the run folder for the chief, a temp folder otherwise."""
        if self.is_chief:
            return run_dir
        if self.scratch is None:
            name = (self.task or "worker").replace(":", "")
            self.scratch = Path(tempfile.mkdtemp(prefix=f"cnnspec-{name}-"))
        return self.scratch

    def cleanup(self) -> None:
        """Remove a non-chief worker's temporary folder."""
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None


def planned_chief(setting: str, cluster: list[str] | None, task_index: int | None) -> bool:
    """Whether this process will be the chief (reads ``--task-index`` or ``TF_CONFIG``; no TensorFlow)."""
    if cluster is not None and setting != "multi_worker":
        raise UsageError(
            f"expected runtime.distribute: multi_worker with --cluster; the spec says {setting}",
            "add --set runtime.distribute=multi_worker, or leave out --cluster",
        )
    if setting != "multi_worker":
        return True
    if cluster is not None:
        return (task_index or 0) == 0
    config = read_tf_config()
    return True if config is None else _is_chief(config)


def reseed(seed: int) -> int:
    """Seed Python, NumPy, TensorFlow and Keras again (as at the start of a run); returns ``seed``."""
    import random

    import keras

    random.seed(seed)
    keras.utils.set_random_seed(seed)
    return seed


def make_distribution(
    setting: str,
    notes: list[str],
    *,
    cluster: list[str] | None = None,
    task_index: int | None = None,
    startup_timeout: float = STARTUP_TIMEOUT_S,
) -> Distribution:
    """Create the strategy named by ``runtime.distribute.strategy`` (imports TensorFlow).

    ``cluster``/``task_index`` (from the command line) set ``TF_CONFIG`` for ``multi_worker``.
    Must run before TensorFlow executes its first op: collective ops are configured at start-up.
    """
    planned_chief(setting, cluster, task_index)  # checks --cluster against the strategy
    if setting == "default":
        return Distribution()
    import tensorflow as tf

    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    if setting == "one_device":
        device = "/gpu:0" if gpus else "/cpu:0"
        return Distribution(setting, tf.distribute.OneDeviceStrategy(device), devices=[device])
    if setting == "mirrored":
        if not gpus:
            notes.append("mirrored: no GPU found, training on the CPU (one replica)")
            strategy = tf.distribute.MirroredStrategy(devices=["/cpu:0"])
        else:
            strategy = tf.distribute.MirroredStrategy()
        return Distribution(
            setting,
            strategy,
            replicas=int(strategy.num_replicas_in_sync),
            devices=list(strategy.extended.worker_devices),
        )
    if setting == "tpu":
        return _tpu(tf)
    return _multi_worker(tf, notes, cluster, task_index, startup_timeout)


class NoTPU(UsageError):
    """``runtime.distribute: tpu`` on a machine without one: located by the caller, which has
    the spec (:func:`no_tpu`)."""


def no_tpu(compiled: CompiledSpec) -> UsageError:
    """The refusal of ``runtime.distribute: tpu`` on a machine without a TPU, at the spec's
    line (it was unlocated), its hint in the form the spec writes the setting (``distribute:
    tpu`` alone, or ``strategy: tpu`` in a mapping; it always said ``strategy:``). A usage error
    still (exit 2): the spec is valid, the machine lacks what it asks for."""
    written = (compiled.doc.data.get("runtime") or {}).get("distribute")
    path = ("runtime", "distribute", *(("strategy",) if isinstance(written, dict) else ()))
    key = path[-1]
    message = "expected a TPU for runtime.distribute: tpu; this machine has none"
    hint = f"use {key}: mirrored (GPUs) or {key}: default (CPU), or run on a TPU VM"
    return _machine_refusal(compiled, path, message, hint)


def _machine_refusal(compiled: CompiledSpec, path: tuple[str, ...], message: str, hint: str) -> UsageError:
    """A usage error (exit 2) located at the setting ``path`` of the spec: the spec is valid,
    this machine lacks what the setting asks for."""
    from cnnspec.errors import Diagnostic, format_path

    located = Diagnostic(message, compiled.doc.loc(path), format_path(path), "runtime", hint)
    where = f"{located.loc}: " if located.loc is not None else ""
    return UsageError(f"{where}{message}", hint, diagnostics=[located])


def refuse_cpu_jit(compiled: CompiledSpec, jit_compile: Any, setting: str, cluster: list[str] | None) -> None:
    """Refuse ``runtime.jit_compile: true`` for a multi-worker run on a machine without a GPU,
    at the spec's line, before this worker joins its cluster: XLA has no collective ops for
    CPUs. :func:`choose_jit` refused it only once the cluster had formed (every worker started,
    perhaps after minutes of waiting), and without a location. A usage error (exit 2), as
    :func:`no_tpu`: the spec is valid, this machine lacks what it asks for."""
    if jit_compile is not True or setting != "multi_worker":
        return
    config = cluster_tf_config(cluster, 0) if cluster is not None else read_tf_config()
    if config is None or _workers(config) < 2 or _has_gpu():
        return  # (one worker: no collective ops cross processes)
    message = (
        "expected jit_compile false or auto with multi_worker on CPUs; TensorFlow's XLA has no "
        "collective ops for CPU devices"
    )
    hint = "set runtime.jit_compile: auto (it picks false here) or false"
    raise _machine_refusal(compiled, ("runtime", "jit_compile"), message, hint)


def _tpu(tf: Any) -> Distribution:
    if not tf.config.list_physical_devices("TPU"):
        raise NoTPU(
            "expected a TPU for runtime.distribute: tpu; this machine has none",
            "use mirrored (GPUs) or default (CPU), or run on a TPU VM",
        )
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu="local")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        strategy = tf.distribute.TPUStrategy(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as exc:
        raise UsageError(f"cannot start the TPU: {type(exc).__name__}: {str(exc)[:200]}") from None
    return Distribution("tpu", strategy, replicas=int(strategy.num_replicas_in_sync))


def overridden_tf_config_note() -> str | None:
    """The note for ``--cluster`` given where the environment sets ``TF_CONFIG`` too: the
    command line's cluster is used, and the environment's was dropped without a word."""
    if not os.environ.get("TF_CONFIG", "").strip():
        return None
    return "multi_worker: --cluster and --task-index are used; the TF_CONFIG set in the environment is not"


def _multi_worker(
    tf: Any, notes: list[str], cluster: list[str] | None, task_index: int | None, startup_timeout: float
) -> Distribution:
    if cluster is not None:
        said = overridden_tf_config_note()
        if said is not None:
            notes.append(said)
        os.environ["TF_CONFIG"] = json.dumps(cluster_tf_config(cluster, task_index or 0))
    config = read_tf_config()
    if config is None:
        # a TF_CONFIG set to nothing (`export TF_CONFIG=`) is none: TensorFlow would parse it
        os.environ.pop("TF_CONFIG", None)
        notes.append("multi_worker: no cluster given (TF_CONFIG or --cluster); training as a single worker")
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        return Distribution("multi_worker", strategy, replicas=int(strategy.num_replicas_in_sync))
    task = f"{config['task']['type']}:{int(config['task']['index'])}"
    await_workers(config, startup_timeout)  # (in Python: Ctrl-C and SIGTERM end it as anywhere)
    _configure_coordination(tf, config, startup_timeout)
    try:
        with _signals_end_the_wait():
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
    except (tf.errors.OpError, RuntimeError, ValueError) as exc:
        if isinstance(exc, tf.errors.DeadlineExceededError) or "Barrier timed out" in str(exc):
            raise not_formed(config, startup_timeout, str(exc)) from None
        raise ClusterError(
            f"the cluster did not form ({task}): {_first_line(exc)}",
            "start every worker of --cluster/TF_CONFIG within the start-up timeout",
        ) from None
    return Distribution(
        "multi_worker",
        strategy,
        is_chief=_is_chief(config),
        task=task,
        num_workers=_workers(config),
        replicas=int(strategy.num_replicas_in_sync),
        devices=list(strategy.extended.worker_devices),
        cluster={k: list(v) for k, v in config["cluster"].items()},
    )


#: How often :func:`await_workers` tries the other workers' addresses (seconds).
PROBE_INTERVAL_S = 0.2


def _port(address: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port``) → (host, port)."""
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def await_workers(config: dict[str, Any], startup_timeout: float) -> None:
    """Wait, in Python, until every other worker of the cluster listens on its address.

    TensorFlow's own wait (``MultiWorkerMirroredStrategy()``) runs in C++ holding the GIL, and
    installs its own SIGTERM handler (its preemption notifier) as it starts: a Python handler
    would run only once the wait is over, and SIGTERM did nothing at all until
    ``startup_timeout`` ran out. Here each worker listens on its own port (as TensorFlow's
    server will, on every interface) while it tries the others' every
    :data:`PROBE_INTERVAL_S`: a worker that listens has started, and TensorFlow's wait that
    follows is short. Ctrl-C and SIGTERM end this wait as they end any other of ``train``
    (``interrupted``, exit 130, the new run folder removed). A port this worker cannot listen
    on is a :class:`UsageError` (TensorFlow said only "Could not start gRPC server" after its
    timeout); a worker that does not listen within ``startup_timeout`` is :func:`not_formed`.
    """
    import socket

    cluster = config["cluster"]
    me = (str(config["task"]["type"]), int(config["task"]["index"]))
    own = cluster[me[0]][me[1]]
    port = _port(own)[1]
    try:
        listener = socket.create_server(("", port))  # (0.0.0.0, as TensorFlow's server binds)
    except OSError as exc:
        raise UsageError(
            f"expected {me[0]} {me[1]} to listen on its address {own}; port {port} of this machine "
            f"cannot be used ({os.strerror(exc.errno) if exc.errno else exc})",
            f"port {port} is in use (another process, or a worker still running): stop it, or give "
            "this worker a free port in --cluster/TF_CONFIG (the same list on every worker)",
        ) from None
    others = {
        (job, index): address
        for job in ("chief", "worker")
        for index, address in enumerate(cluster.get(job, []))
        if (job, index) != me
    }
    deadline = time.monotonic() + startup_timeout
    with listener:
        while True:
            for task, address in list(others.items()):
                with contextlib.suppress(OSError), socket.create_connection(_port(address), timeout=1):
                    del others[task]
            if not others:
                return
            if time.monotonic() >= deadline:
                raise _did_not_join(config, [(job, str(index)) for job, index in others], startup_timeout)
            time.sleep(PROBE_INTERVAL_S)


def _configure_coordination(tf: Any, config: dict[str, Any], startup_timeout: float) -> None:
    """TensorFlow's coordination service as MultiWorkerMirroredStrategy sets it up, plus bounded
    waits: the cluster must form within ``startup_timeout`` and a silent worker is dead after
    :data:`HEARTBEAT_TIMEOUT_S`."""
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.distribute import multi_worker_util
    from tensorflow.python.eager import context

    spec = tf.train.ClusterSpec(config["cluster"])
    jobs = [
        coordination_config_pb2.CoordinatedJob(name=job, num_tasks=spec.num_tasks(job))
        for job in ("chief", "worker")
        if job in spec.jobs
    ]
    context.context().configure_coordination_service(
        service_type="standalone",
        service_leader=multi_worker_util.coordination_leader(spec),
        coordinated_jobs=jobs,
        cluster_register_timeout_in_ms=int(startup_timeout * 1000),
        heartbeat_timeout_in_ms=HEARTBEAT_TIMEOUT_S * 1000,
    )
    # Without a registration barrier the timeout above bounds only this task's own registration:
    # the wait for the other tasks that follows (``WaitForAllTasks``) has none, and holds the
    # GIL, so nothing in Python could end it. With the barrier every task waits at registration,
    # for at most ``startup_timeout``, and then gets DeadlineExceededError (not_formed).
    service = getattr(context.context(), "_coordination_service_config", None)
    if service is not None and hasattr(service, "cluster_register_with_barrier"):
        service.cluster_register_with_barrier = True


def not_formed(config: dict[str, Any], startup_timeout: float, error: str) -> ClusterError:
    """The :class:`ClusterError` for a cluster that did not form within ``startup_timeout``,
    naming the workers that did not join (from TensorFlow's barrier error, else the
    coordination leader this task could not reach)."""
    cluster = config["cluster"]
    me = (str(config["task"]["type"]), str(int(config["task"]["index"])))
    # "... Some timed out task names:\n/job:worker/replica:0/task:1\n\nAdditional GRPC error ..."
    stragglers = error.partition("timed out task names:")[2].split("Additional")[0]
    tasks = [t for t in re.findall(r"/job:(\w+)/replica:\d+/task:(\d+)", stragglers) if t != me]
    if not tasks:  # this task never reached the leader (the chief): it is the one missing
        tasks = [("chief", "0") if "chief" in cluster else ("worker", "0")]
    return _did_not_join(config, tasks, startup_timeout)


def _did_not_join(
    config: dict[str, Any], tasks: list[tuple[str, str]], startup_timeout: float
) -> ClusterError:
    """:func:`not_formed`'s error for the (job, index) ``tasks`` that did not join in time."""
    cluster = config["cluster"]
    missing = []
    for job, index in dict.fromkeys(tasks):
        addresses = cluster.get(job, [])
        where = f" at {addresses[int(index)]}" if int(index) < len(addresses) else ""
        missing.append(f"{job} {index}{where}")
    seconds = f"{startup_timeout:g}"
    return ClusterError(
        f"the cluster did not form within {seconds} s: {', '.join(missing)} did not join",
        "start every worker (one `cnnspec train … --cluster … --task-index I` each, or TF_CONFIG) "
        f"within runtime.distribute.startup_timeout ({seconds} s), or raise the timeout",
    )


@contextlib.contextmanager
def _signals_end_the_wait() -> Iterator[None]:
    """Ctrl-C ends the process at once during TensorFlow's own wait for the cluster.

    TensorFlow waits for the other workers inside C++ holding the GIL: a Python signal handler
    (``cnnspec train``'s, or Python's KeyboardInterrupt) would only run once the wait is over,
    up to ``startup_timeout`` later. The signal's default action ends the process in the
    kernel instead (exit status 130); nothing of the run has been written yet, and the kernel
    drops the run folder's lock. SIGTERM is no help here: TensorFlow installs its own handler
    for it (its preemption notifier) as the wait starts. Both matter little since
    :func:`await_workers` does the long wait in Python first (every worker has started when
    this one begins). The previous handlers come back as soon as the strategy exists (or
    failed), replacing TensorFlow's SIGTERM handler too.
    """
    import signal
    import threading

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for number in (signal.SIGINT, signal.SIGTERM):
            handler = signal.getsignal(number)
            if handler not in (signal.SIG_IGN, None):
                previous[number] = signal.signal(number, signal.SIG_DFL)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _first_line(exc: BaseException) -> str:
    """The informative part of a TensorFlow error (without the graph's Python traceback)."""
    text = str(exc)
    flat = " ".join(text.split())
    unhealthy = re.search(r"unhealthy \(stopped sending heartbeats\):((?:\s*/job:\S+)+)", flat)
    if unhealthy:
        tasks = re.findall(r"/job:(\w+)/replica:\d+/task:(\d+)", unhealthy.group(1))
        return "no heartbeat from " + ", ".join(f"{job} {index}" for job, index in tasks)
    skip = ("Graph execution error", "Detected at node", "File ", "[[", "Traceback")
    lines = [line.strip() for line in text.splitlines()]
    useful = [line for line in lines if line and not line.startswith(skip) and not line.startswith("  ")]
    found = useful[-1] if useful else flat
    return re.sub(r"\{\{function_node [^}]*\}\}\s*", "", found)[:300]


def is_cluster_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is TensorFlow reporting a lost peer (collectives aborted, unavailable)."""
    try:
        import tensorflow as tf
    except ImportError:  # pragma: no cover - TensorFlow is a dependency
        return False
    lost = (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.DeadlineExceededError)
    if isinstance(exc, lost):
        return True
    text = str(exc)
    return isinstance(exc, tf.errors.OpError) and any(
        marker in text for marker in ("Collective ops is aborted", "unhealthy", "heartbeat")
    )


def cluster_failure(exc: BaseException, dist: Distribution, run_dir: Path, work_dir: Path) -> ClusterError:
    """The :class:`ClusterError` for a lost worker, with the resume command's hint."""
    from cnnspec.training.state import TrainingState

    snapshots = TrainingState(work_dir).snapshots()
    epochs_done = snapshots[0].epoch if snapshots else 0
    return ClusterError(
        f"{(dist.task or 'worker').replace(':', ' ')} stopped: another worker of the cluster failed or "
        "became unreachable "
        f"after {epochs_done} whole epoch(s) ({_first_line(exc)})",
        f"restart every worker with --resume {run_dir} (the state of the last whole epoch is saved "
        "by the chief)",
    )


# -- Keras 3 and MultiWorkerMirroredStrategy -----------------------------------------------------


_patched_reduce = False


def prepare_model(model: Any, dist: Distribution) -> Any:
    """Make ``model.fit``/``evaluate``/``predict`` work under a multi-worker strategy.

    Keras 3.15 (keras-team/keras#20585) reduces the first batch of a distributed dataset as a
    whole structure (``strategy.reduce`` takes one tensor) and reduces scalar step logs along
    axis 0. Both are fixed here for multi-worker models only: the symbolic build takes the
    local replica's batch (the shapes are all it needs), and scalar logs are averaged over
    replicas with an all-reduce, so every worker sees the same logs (the same early-stopping
    decisions). With one worker nothing changes.
    """
    if not dist.multi_worker:
        return model
    import tensorflow as tf
    from keras.src import tree

    strategy = dist.strategy

    def needs_data() -> bool:  # (the conditions under which Keras' _symbolic_build reads a batch)
        return (
            not all(layer.built for layer in model._flatten_layers())
            or (model._compile_metrics is not None and not model._compile_metrics.built)
            or (model._compile_loss is not None and not model._compile_loss.built)
        )

    def symbolic_build(iterator: Any = None, data_batch: Any = None) -> None:
        # Peeking starts a pass of its own over the data, so only when the build needs a batch:
        # a built model's evaluate/predict then reads each (streamed) file once.
        if iterator is not None and needs_data():
            for _, _, it in iterator:
                batch = next(it)
                data_batch = tree.map_structure(
                    lambda v: (
                        strategy.experimental_local_results(v)[0]
                        if isinstance(v, tf.distribute.DistributedValues)
                        else v
                    ),
                    batch,
                )
                break
        with strategy.scope():
            model._symbolic_build(data_batch=data_batch)

    model._maybe_symbolic_build = symbolic_build
    _patch_reduce_per_replica()
    return model


def _patch_reduce_per_replica() -> None:
    global _patched_reduce
    if _patched_reduce:
        return
    import tensorflow as tf
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer

    original = trainer.reduce_per_replica

    def reduce_per_replica(values: Any, strategy: Any, reduction: str) -> Any:
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):

            def mean(value: Any) -> Any:
                if isinstance(value, tf.distribute.DistributedValues) or tf.is_tensor(value):
                    rank = value.shape.rank if tf.is_tensor(value) else None
                    if rank is None:
                        local = strategy.experimental_local_results(value)[0]
                        rank = local.shape.rank
                    return strategy.reduce("MEAN", value, axis=None if rank == 0 else 0)
                return value

            return tree.map_structure(mean, values)
        return original(values, strategy, reduction)

    trainer.reduce_per_replica = reduce_per_replica
    _patched_reduce = True


# -- jit_compile: auto ---------------------------------------------------------------------------


@dataclass
class JitChoice:
    """The outcome of ``jit_compile: auto`` (recorded in lock.json)."""

    setting: Any
    chosen: bool
    seconds_per_step: dict[str, float] = field(default_factory=dict)
    steps: int = 0
    reason: str = ""

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"setting": self.setting, "chosen": self.chosen}
        if self.seconds_per_step:
            out["seconds_per_step"] = {k: round(v, 6) for k, v in self.seconds_per_step.items()}
            out["timed_steps"] = self.steps
            plain, xla = self.seconds_per_step.get("no_xla"), self.seconds_per_step.get("xla")
            if plain and xla:
                out["xla_speedup"] = round(plain / xla, 3)
        if self.reason:
            out["reason"] = self.reason
        return out

    @classmethod
    def from_lock(cls, data: dict[str, Any]) -> JitChoice:
        return cls(
            data.get("setting", "auto"),
            bool(data.get("chosen", False)),
            dict(data.get("seconds_per_step", {})),
            int(data.get("timed_steps", 0)),
            "decided when the run started",
        )


WARMUP_STEPS = 2
TIMED_STEPS = 5


def time_steps(model: Any, dataset: Any, warmup: int = WARMUP_STEPS, steps: int = TIMED_STEPS) -> float:
    """Median seconds per training step of a compiled model, after ``warmup`` steps (tracing)."""
    import keras

    stamps: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            stamps.append(time.perf_counter())

    total = warmup + steps
    model.fit(
        dataset.repeat().take(total),
        epochs=1,
        steps_per_epoch=total,
        callbacks=[Clock()],
        shuffle=False,
        verbose=0,
    )
    gaps = sorted(b - a for a, b in zip(stamps[warmup - 1 : -1], stamps[warmup:]))
    return gaps[len(gaps) // 2] if gaps else float("inf")


def choose_jit(
    setting: Any,
    build: Callable[[bool], Any],
    dataset: Any,
    dist: Distribution,
    notes: list[str],
    deterministic: bool = False,
    unsupported: Sequence[str] = (),
) -> JitChoice:
    """Resolve ``runtime.jit_compile``: ``auto`` times a few steps without and with XLA.

    ``build(jit)`` returns a freshly built and compiled model (inside the strategy's scope);
    the timed models are thrown away. Multi-worker runs decide on the mean of every worker's
    timings, so all workers compile the same program. A ``deterministic`` run (op determinism)
    gets no XLA: Keras would turn it off with a warning, so ``auto`` picks false untimed.

    ``unsupported`` names the model's layers without XLA support (the registry's ``xla``,
    :func:`cnnspec.analysis.settings.layers_without_xla`): Keras would turn XLA off for the
    whole model, so ``auto`` picks false untimed (its "XLA" timing would be a second run
    without XLA). ``true`` with such a layer is a spec error (``cnnspec validate``).
    """
    if setting != "auto":
        if setting is True and dist.multi_worker and not _has_gpu():
            raise UsageError(
                "expected jit_compile false or auto with multi_worker on CPUs; TensorFlow's XLA has "
                "no collective ops for CPU devices",
                "set runtime.jit_compile: auto (it picks false here) or false",
            )
        return JitChoice(setting, bool(setting))
    if deterministic:
        return JitChoice("auto", False, reason="training.deterministic: op determinism has no XLA")
    if unsupported:
        layers = ", ".join(unsupported)
        # (said once here, like the timings below: the raw Keras UserWarning never fires, as
        # the model is compiled without XLA)
        notes.append(f"jit_compile auto: no XLA — Keras cannot compile {layers} with XLA")
        return JitChoice("auto", False, reason=f"layers without XLA support: {layers}")
    if dist.multi_worker and not _has_gpu():
        return JitChoice("auto", False, reason="XLA has no CPU collective ops for multi_worker")
    timings: list[float] = []
    for jit in (False, True):
        try:
            timings.append(time_steps(build(jit), dataset))
        except Exception as exc:  # an op XLA cannot compile: keep plain TensorFlow
            if not jit:
                raise
            notes.append(f"jit_compile auto: XLA failed on this model ({type(exc).__name__}); using false")
            timings.append(float("inf"))
    plain, xla = dist.mean_across_workers(timings)
    chosen = xla < plain
    seconds = {"no_xla": plain}
    if xla != float("inf"):
        seconds["xla"] = xla
    speed = f"{plain / xla:.2f}×" if xla not in (0.0, float("inf")) else "n/a"
    notes.append(
        f"jit_compile auto: {plain * 1000:.1f} ms/step without XLA, "
        + (f"{xla * 1000:.1f} ms/step with XLA ({speed})" if xla != float("inf") else "XLA failed")
        + f" → {'XLA' if chosen else 'no XLA'}"
    )
    return JitChoice("auto", chosen, seconds, TIMED_STEPS)


def _has_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


# -- lock.json ------------------------------------------------------------------------------------


def update_lock(run_dir: Path, **fields: Any) -> None:
    """Add ``fields`` to the run's lock.json (atomically)."""
    from cnnspec.fileio import write_atomic

    path = Path(run_dir) / "lock.json"
    lock = json.loads(path.read_text(encoding="utf-8"))
    lock.update(fields)
    write_atomic(path, json.dumps(lock, indent=2) + "\n")


@contextlib.contextmanager
def worker_scratch(dist: Distribution) -> Iterator[None]:
    """Remove a non-chief worker's temporary folder however the run ends."""
    try:
        yield
    finally:
        dist.cleanup()
