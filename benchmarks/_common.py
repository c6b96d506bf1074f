"""Helpers shared by the benchmark scripts: statistics, child processes, machine facts, JSON.

Every benchmark compares an A (cnnspec) with a B (the code a user would otherwise write) in the
same run, alternating A and B inside each repetition so that drift (thermal, other load, caches)
hits both alike. Results are summarised as median with min–max; ratios are ratios of medians.
Nothing here imports TensorFlow.
"""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "benchmarks"
PYTHON = sys.executable
CNNSPEC = str(Path(sys.executable).with_name("cnnspec"))

#: Environment variables through which TensorFlow sizes its thread pools (0/absent: its default).
THREAD_ENV = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def summary(samples: Sequence[float]) -> dict[str, Any]:
    """Median, min, max and the raw samples (empty input gives ``None`` statistics)."""
    values = [float(s) for s in samples]
    if not values:
        return {"median": None, "min": None, "max": None, "n": 0, "samples": []}
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
        "samples": values,
    }


def ratio(a: dict[str, Any] | None, b: dict[str, Any] | None) -> float | None:
    """Ratio of two summaries' medians (``None`` when either is missing or b is zero)."""
    if not a or not b or a.get("median") is None or not b.get("median"):
        return None
    return float(a["median"]) / float(b["median"])


def alternate(variants: Mapping[str, Callable[[], Any]], repeats: int) -> dict[str, list[Any]]:
    """Run every variant once per repetition, in turn (A, B, A, B, ...); each returns its sample.

    The starting variant rotates with the repetition so neither side always runs first.
    """
    names = list(variants)
    samples: dict[str, list[Any]] = {name: [] for name in names}
    for rep in range(repeats):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(variants[name]())
    return samples


def fmt_stat(stat: dict[str, Any] | None, scale: float = 1.0, digits: int = 3, unit: str = "") -> str:
    """``median (min–max) unit`` for a summary."""
    if not stat or stat.get("median") is None:
        return "n/a"
    m, lo, hi = (stat[k] * scale for k in ("median", "min", "max"))
    return f"{m:.{digits}f} ({lo:.{digits}f}–{hi:.{digits}f}){' ' + unit if unit else ''}"


@dataclass
class ChildResult:
    """One finished child process: wall seconds, CPU seconds (user + system, all its threads),
    peak resident memory (bytes), output, exit status."""

    seconds: float
    peak_rss: int
    returncode: int
    stdout: str
    stderr: str
    cpu_seconds: float = 0.0

    def check(self, what: str) -> ChildResult:
        if self.returncode != 0:
            tail = "\n".join((self.stderr or self.stdout).strip().splitlines()[-25:])
            raise RuntimeError(f"{what} failed with exit status {self.returncode}:\n{tail}")
        return self


def run_child(
    args: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path = ROOT, log: Path | None = None
) -> ChildResult:
    """Run a command to completion; measure its wall time and its own peak RSS (``os.wait4``).

    Output (stdout and stderr together) goes to ``log``, or to a temporary file that is read
    back, so the child never blocks on a full pipe.
    """
    full_env = {**os.environ, **(env or {})}
    with tempfile.TemporaryDirectory(prefix="cnnspec-bench-") as tmp:
        target = log or Path(tmp) / "output.txt"
        with open(target, "w", encoding="utf-8") as handle:
            start = time.perf_counter()
            proc = subprocess.Popen(
                list(args), cwd=cwd, env=full_env, stdout=handle, stderr=subprocess.STDOUT
            )
            _, status, usage = os.wait4(proc.pid, 0)
            seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        text = target.read_text(encoding="utf-8", errors="replace")
    peak = int(usage.ru_maxrss) * (1 if sys.platform == "darwin" else 1024)
    return ChildResult(seconds, peak, proc.returncode, text, text, usage.ru_utime + usage.ru_stime)


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a running process (all its threads) has used, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_child_marked(
    args: Sequence[str],
    mark: re.Pattern[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path = ROOT,
    log: Path | None = None,
) -> tuple[ChildResult, list[tuple[float, float | None]]]:
    """Like :func:`run_child`, reading the output as it comes: for each line matching ``mark``,
    the wall seconds since the start and the child's CPU seconds so far (``/proc``) at that moment.

    The child should write unbuffered (``PYTHONUNBUFFERED=1``) so a line arrives when it is
    printed.
    """
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    marks: list[tuple[float, float | None]] = []
    lines: list[str] = []
    start = time.perf_counter()
    proc = subprocess.Popen(
        list(args),
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        bufsize=1,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if mark.search(line):
            marks.append((time.perf_counter() - start, process_cpu_seconds(proc.pid)))
        lines.append(line)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stdout.close()
    text = "".join(lines)
    if log is not None:
        log.write_text(text, encoding="utf-8")
    peak = int(usage.ru_maxrss) * (1 if sys.platform == "darwin" else 1024)
    return ChildResult(seconds, peak, proc.returncode, text, text, usage.ru_utime + usage.ru_stime), marks


def thread_env() -> dict[str, str]:
    """The TensorFlow thread variables set in this environment (passed on to every child)."""
    return {k: os.environ[k] for k in THREAD_ENV if k in os.environ}


def tf_thread_settings() -> dict[str, Any]:
    """TensorFlow's configured thread pools (0 = its default: one thread per core). Imports TF."""
    import tensorflow as tf

    return {
        "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        "env": thread_env(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> dict[str, Any]:
    """Cores, CPU model, memory, OS, Python and library versions, date (no TensorFlow import)."""
    memory = None
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal"):
                memory = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_bytes": memory,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": {
            name: _version(name)
            for name in ("cnnspec", "tensorflow", "keras", "numpy", "scikit-learn", "PyYAML", "jsonschema")
        },
        "thread_env": thread_env(),
    }


def write_json(path: Path | None, data: dict[str, Any]) -> None:
    """Write results (atomically) when a path was given."""
    if path is None:
        return
    from cnnspec.fileio import write_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(data, indent=1, default=str) + "\n")


def quiet_tensorflow() -> None:
    """Turn TensorFlow's C++ start-up log down (before it is imported)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
