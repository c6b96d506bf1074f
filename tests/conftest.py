"""Shared fixtures: the repository paths, a CLI runner, and spec-writing helpers.

How the tests are laid out: flat, one file per module (issue 14).

- ``tests/test_<module>.py`` holds the tests of ``cnnspec/<package>/<module>.py`` and is named
  after the module (``test_state.py`` for ``training/state.py``, ``test_sections.py`` for
  ``spec/sections.py``); where the module's bare name would be unclear, a qualifier is added
  (``test_report_html.py`` for ``reporting/html.py``, ``test_train_config.py`` for
  ``training/config.py``).
- A command or a concern that spans modules has one file named after it (``test_train.py``,
  ``test_report.py``, ``test_hostile.py``, ``test_specs.py``, ``test_no_tensorflow.py``).
  ``test_report_support.py`` holds helpers the reporting tests share; ``strategies.py`` the
  Hypothesis strategies.
- Tests test behaviour from the outside (public functions, the CLI through Typer's CliRunner,
  golden fixtures in ``tests/fixtures/``), would fail with the feature removed, and make their
  own small data.
- Whatever imports TensorFlow or takes seconds is marked ``@pytest.mark.slow`` (a module-level
  ``pytestmark`` for a whole file), so ``-m "not slow"`` stays a quick, TensorFlow-free run.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import typer.testing
from typer.testing import CliRunner

from tests.script_runner import LSP_PRELOAD, ScriptRunner

ROOT = Path(__file__).resolve().parent.parent
SPECS_DIR = ROOT / "specs"
SPEC_FILES = sorted(SPECS_DIR.glob("*.yaml"))
FIXTURES = Path(__file__).resolve().parent / "fixtures"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# A shell without job control starts a background job (`make test &` in a script) with SIGINT
# ignored, and every process started from it inherits that: the tests that send a command a
# Ctrl-C would find it ignored (a command keeps a signal its parent ignores, as it should) and
# wait for it to its timeout. The tests stand where a terminal or an editor starts the command.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

#: The smallest model that trains on the embedded digits (8×8×1, 10 classes, 128 images): the
#: run-folder tests (resume, kill loop, locks) put their own name before it and their own
#: ``training`` section after it.
TINY_DIGITS_MODEL = """\
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}
  - global_avg_pool2d
  - dense: {units: 10, activation: softmax}
data: {source: digits, limit: 128}
"""

#: A model small enough to build in milliseconds (8×8×1 → 3 classes), for tests of the training
#: sections and the run folder that add their own ``training`` section after it.
TINY_FLAT_HEAD = """\
cnnspec: 1
name: tiny
input: {shape: [8, 8, 1]}
model:
  - flatten
  - dense: {units: 3, activation: softmax}
"""


class FakeDataset:
    """What ``rundir.start`` reads of a :class:`cnnspec.training.dataset.Dataset` (four 8×8×1
    training images, three classes), for run-folder tests that need no real data."""

    def __init__(self) -> None:
        import numpy as np

        self.source = {"kind": "npz", "path": "d.npz"}
        self.sample_shape = (8, 8, 1)
        self.x_train = np.zeros((4, 8, 8, 1), dtype="uint8")
        self.class_names = ["a", "b", "c"]

    def content_hash(self) -> str:
        return "abc123"

    def sizes(self) -> dict[str, int]:
        return {"train": 4, "validation": 0, "test": 2}


def layers_by_name(model) -> dict:
    """A Keras model's layers by name, as ``model.get_layer(name)`` finds them (the first of a
    name): for tests that look up every layer of a large model, where get_layer, which lists
    the model's layers anew on every call, is quadratic (a thousand layers: a second)."""
    layers: dict = {}
    for layer in model.layers:
        layers.setdefault(layer.name, layer)
    return layers


def _cache_typer_commands() -> None:
    """Convert each Typer app to its Click command once per test process, not once per invoke.

    ``CliRunner.invoke(app, ...)`` calls ``typer.main.get_command(app)`` every time, which
    re-reads the signature and type hints of every command: 18 ms of a 28 ms `validate`, or
    about a minute of CPU over the suite's thousands of invocations. The Click command is
    stateless between invocations (each builds its own context), so one per app is the same
    command. Without the private name (another Typer), the tests still work, only slower.
    """
    convert = getattr(typer.testing, "_get_command", None)
    if convert is None:
        return
    commands: dict[int, tuple[object, object]] = {}  # id(app) → (app kept alive, its command)

    def cached(app):
        if id(app) not in commands:
            commands[id(app)] = (app, convert(app))
        return commands[id(app)][1]

    typer.testing._get_command = cached


_cache_typer_commands()


@pytest.fixture(scope="session", autouse=True)
def _collect_as_the_cli_does() -> Iterator[None]:
    """Run the tests under the collector threshold the ``cnnspec`` command sets
    (:data:`cnnspec.cli.app.GC_THRESHOLD`; CliRunner does not go through ``main()``).

    At Python's 700 the collector scans the resolver's live objects again and again: ~40 % of
    the CPU of a 20,000-layer spec's validate (tests/test_hostile.py's block_fanout.yaml), as
    ``cnnspec`` itself never spends it. What a test checks does not depend on when garbage is
    collected, only how long it takes; :func:`in_main` puts back whatever it finds."""
    import gc

    from cnnspec.cli.app import GC_THRESHOLD

    before = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, *before[1:])
    yield
    gc.set_threshold(*before)


_SCRIPTS = ScriptRunner()
atexit.register(_SCRIPTS.close)


def run_script(script: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a generated script in a process of its own, as its user would, and check it exits 0:
    the script must stand alone, so it never runs in the test's own process. The process is a fork
    of a Python that has imported TensorFlow already (tests/script_runner.py: 6–9 s less each).
    Its output tails go into the failure message."""
    done = run_python(script, *args, cwd=cwd)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done


def load_module(path: Path, name: str) -> ModuleType:
    """The Python file ``path`` imported as the module ``name`` (a generated model module, or
    tests/fixtures/codegen/compare_models.py), without putting its folder on sys.path."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_python(
    script: Path, *args: str, cwd: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """``python script args…`` in a process of its own that has TensorFlow imported already
    (tests/script_runner.py), as a completed process whose exit status is not checked."""
    return _SCRIPTS.run([str(script), *args], cwd=cwd, timeout=timeout)


#: The environment of :func:`with_own_kernels`' processes (and test_onednn's resumed training):
#: TensorFlow with its own CPU kernels, oneDNN off.
OWN_KERNELS_ENV = {"TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "3"}


def with_own_kernels(code: str, timeout: float = 300) -> str:
    """What ``code`` prints, run (in the repository root, with it on ``sys.path``) in a process of
    its own whose TensorFlow uses its own CPU kernels (``TF_ENABLE_ONEDNN_OPTS=0``, read at
    TensorFlow's import: never in this process). oneDNN, on by default on CPUs with AVX-512, runs
    ops TensorFlow's own kernels refuse (a dilated transposed convolution, a depthwise one of two
    strides): a test of what TensorFlow refuses asks its own kernels, the same on every machine.
    The process is a fork of a server that imported TensorFlow with oneDNN off
    (tests/script_runner.py, ``env_server``): the tests that ask (the ``own_kernels`` xdist group)
    share its one import, where each fresh Python imported TensorFlow and tore it down again."""
    import tempfile

    env = {**os.environ, **OWN_KERNELS_ENV}
    with tempfile.TemporaryDirectory(prefix="own-kernels-") as folder:
        script = Path(folder) / "own_kernels.py"
        script.write_text(f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n{code}", encoding="utf-8")
        done = _SCRIPTS.run([str(script)], cwd=ROOT, timeout=timeout, env=env, env_server=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def start_python(script: Path | str, *args: str, **popen) -> subprocess.Popen[str]:
    """``subprocess.Popen([sys.executable, script, *args], text=True, **popen)`` (stdout, stderr,
    env, cwd) in a process of its own that has TensorFlow imported already (tests/script_runner.py),
    for tests that signal and wait for a command such as ``cnnspec train`` (the venv's
    ``cnnspec`` console script is a Python script); ``cold=True`` starts a fresh Python."""
    return _SCRIPTS.start([str(script), *args], **popen)  # type: ignore[return-value]


#: The command lines of a JSON list (argv[1]), run in turn through the Typer app in one fresh
#: Python: each opens with the line ``@@command@@`` on stdout and stderr and ends with its exit
#: status and, of the modules named in argv[2], those imported so far, on stdout.
_COLD_COMMANDS = """
import json, sys
from cnnspec.cli.app import app
watched = sys.argv[2].split(",")
for argv in json.loads(sys.argv[1]):
    print("@@command@@", flush=True)
    print("@@command@@", file=sys.stderr, flush=True)
    try:
        app(argv)
        code = 0
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else 0 if exit.code is None else 1
    sys.stdout.flush()
    sys.stderr.flush()
    print(f"EXIT={code}", flush=True)
    print("HEAVY=" + ",".join(sorted(m for m in watched if m in sys.modules)), flush=True)
"""


def cold_commands(lines: list[list[str]], watched: tuple[str, ...]) -> list[tuple[int, str, str, list[str]]]:
    """``cnnspec`` command lines run one after another in one fresh Python (one start-up and one
    import of cnnspec for all: most of the time of a probe per command): for each, its exit
    status, stdout, stderr, and the modules of ``watched`` imported once it ended. Modules are
    never unloaded, so a command that imported one shows it in its own result, whatever ran
    before it; the tests that prove a command never imports TensorFlow use it."""
    done = subprocess.run(
        [sys.executable, "-c", _COLD_COMMANDS, json.dumps(lines), ",".join(watched)],
        capture_output=True,
        text=True,
        timeout=60 + 30 * len(lines),
    )
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
    outs, errs = done.stdout.split("@@command@@\n")[1:], done.stderr.split("@@command@@\n")[1:]
    assert len(outs) == len(errs) == len(lines), (done.stdout[-2000:], done.stderr[-2000:])
    results = []
    for out, err in zip(outs, errs):
        *printed, code, heavy = out.splitlines()
        assert code.startswith("EXIT=") and heavy.startswith("HEAVY="), out
        modules = heavy.removeprefix("HEAVY=").split(",") if heavy != "HEAVY=" else []
        results.append((int(code.removeprefix("EXIT=")), "\n".join(printed), err, modules))
    return results


def run_lsp(input: bytes, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    """``cnnspec lsp --debounce-ms 30`` fed ``input`` on its stdin, to its end (its stdout and
    stderr as bytes), in a process of its own forked from a Python that has imported cnnspec's
    language server already (tests/script_runner.py, LSP_PRELOAD): a scripted conversation of
    the protocol tests without the 0.7 s of imports of a cold start."""
    command = [str(Path(sys.executable).with_name("cnnspec")), "lsp", "--debounce-ms", "30"]
    return _SCRIPTS.run(command, cwd=cwd, timeout=timeout, input=input, text=False, preload=LSP_PRELOAD)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def write_spec(tmp_path: Path):
    """Write spec text to a file in tmp_path and return its path."""

    def write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write


#: Markers whose tests must run where CNNSPEC_REQUIRE names them (comma-separated): there a skip,
#: say for a missing Chromium, is a failure. `.ci/run` sets it, so CI can never pass by skipping
#: the tests that need a real browser; a developer without one still gets a skip with its reason.
REQUIRED_MARKERS = frozenset(m.strip() for m in os.environ.get("CNNSPEC_REQUIRE", "").split(",") if m.strip())


#: `make test-long` (part of `make test-full`) sets it: the tests marked ``full`` run. Each is a
#: second, longer proof of a behaviour that `make test` proves otherwise (statically, or through
#: `cnnspec train` alone), left out of `make test` to keep it within its 10 minutes on 2 cores.
LONG_PROOFS = bool(os.environ.get("CNNSPEC_LONG_PROOFS"))


def pytest_collection_modifyitems(config, items):
    if LONG_PROOFS:
        return
    reason = "a second, longer proof: runs in `make test-long` (make test-full) or with CNNSPEC_LONG_PROOFS=1"
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if item.get_closest_marker("full") is not None:
            item.add_marker(skip)


#: Whether TensorFlow was imported in this process when each test's setup began (by its node id),
#: for :func:`pytest_runtest_makereport`: a test not marked ``slow`` that imports it (in its own
#: body or a fixture it sets up) fails, so `-m "not slow"` stays TensorFlow-free. A process has
#: it once for all, so the check sees the first such test of each process: every one of them in
#: a TensorFlow-free run (`make test-fast`), and in `make test` one that runs before any slow test.
_TENSORFLOW_BEFORE: dict[str, bool] = {}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    _TENSORFLOW_BEFORE[item.nodeid] = "tensorflow" in sys.modules


def _imported_tensorflow(item, report) -> bool:
    """Whether ``item``, a test not marked slow, imported TensorFlow (checked once it ended)."""
    if report.when != "teardown" or item.get_closest_marker("slow") is not None:
        return False
    return not _TENSORFLOW_BEFORE.pop(item.nodeid, True) and "tensorflow" in sys.modules


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if _imported_tensorflow(item, report) and report.passed:
        report.outcome = "failed"
        report.longrepr = (
            'imported TensorFlow without @pytest.mark.slow: `-m "not slow"` is the TensorFlow-free '
            "fast loop (tests/conftest.py); mark it slow"
        )
        return
    needed = REQUIRED_MARKERS & {mark.name for mark in item.iter_markers()}
    if report.skipped and needed and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = (
            f"skipped ({reason}), but CNNSPEC_REQUIRE={','.join(sorted(REQUIRED_MARKERS))} "
            f"requires the {'/'.join(sorted(needed))} tests to run here"
        )


#: ``len(sys.modules)`` when :func:`pytest_runtest_logfinish` last froze the process's objects.
_FROZEN_WITH_MODULES = [0]


def pytest_runtest_logfinish(nodeid, location):
    """Once a test has imported TensorFlow (or 50 more modules since), what the process holds
    after a full collection is frozen (``gc.freeze``), as ``cnnspec``'s main() freezes what it
    imported: the collector's full collections, which ran every few seconds of a worker's
    training tests, no longer walk TensorFlow's and Keras' ~370,000 objects (0.14 s each time;
    measured 3-4 % of the CPU of test_temperature, test_export and test_phases run together).
    A TFLite conversion or a test of main() unfreezes them all (both hand their freeze back);
    the next import of that many modules freezes them again. What a test left unreachable is
    collected first, so no test's garbage is kept."""
    import gc

    count = len(sys.modules)
    if "tensorflow" in sys.modules and count - _FROZEN_WITH_MODULES[0] >= 50:
        gc.collect()
        gc.freeze()
        _FROZEN_WITH_MODULES[0] = count


@pytest.fixture
def in_main(monkeypatch):
    """:func:`cnnspec.cli.app.main` run in this process (`validate x.yaml` as its command line):
    its SIGTERM/SIGINT handlers, the collector's settings, the noted stop and the unraisable
    hook (which an interrupted main() makes quiet) are put back afterwards
    (tests/test_signals.py, tests/test_cli_audit3.py)."""
    import gc
    import threading

    from cnnspec.fileio import stop_handled

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers are set in the main thread only")
    handlers = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    threshold = gc.get_threshold()
    monkeypatch.setattr(sys, "argv", ["cnnspec", "validate", "x.yaml"])
    monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)
    yield
    for number, handler in handlers.items():
        signal.signal(number, handler)
    stop_handled()
    gc.set_threshold(*threshold)
    gc.unfreeze()
