"""What `codegen --script`'s training program does with its output folder and its options.

As `cnnspec train`: each run gets a new folder `runs/<name>-<YYYYmmdd-HHMMSS>`; an `--out`
that already has files is refused (exit status 2) unless `--force`; every file is written to a
temp file and renamed (nothing half-written, no temp file left). Bad options (`--epochs 0`, a
data path that does not exist) stop the script with exit status 2 and argparse's one-line error
before the output folder is made. And the script holds no code that the spec decides away (a
runtime test of two template constants, calls that do nothing).

The options are checked on the script's own `parse_args` in this process, without TensorFlow;
one test runs the script twice in a fresh Python (a new folder, then `--force` into it): each
run costs a TensorFlow start.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cnnspec.api import compile_spec
from cnnspec.backends.python_emitter import generate_code
from tests.conftest import ROOT, run_script
from tests.test_listing_edges import script_functions
from tests.test_script_parity_audit import TASK

TINY = """\
cnnspec: 1
name: tiny
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 2, kernel_size: 3, activation: relu}
  - global_avg_pool2d
  - dense: {units: 10, activation: softmax}
data: {source: digits, limit: 64}
training: {epochs: 1, batch_size: 16, seed: 1}
"""

#: A plain classifier: no limit, steps_per_epoch, class_weight or one-hot labels.
PLAIN = TINY.replace(", limit: 64", "")

#: The same classifier with every option that the dead code stood for.
EVERYTHING = """\
cnnspec: 1
name: everything
input: {shape: [8, 8, 3]}
model:
  - conv2d: {filters: 2, kernel_size: 3, activation: relu}
  - global_avg_pool2d
  - dense: {units: 10, activation: softmax}
data: {limit: 64}  # the default digits (a source named must fit the input: validate refuses it)
training:
  epochs: 1
  batch_size: 16
  steps_per_epoch: 2
  class_weight: balanced
  loss: {categorical_crossentropy: {label_smoothing: 0.1}}
  seed: 1
"""

NPZ = """\
cnnspec: 1
name: npz_run
input: {shape: [8, 8, 1]}
model:
  - global_avg_pool2d
  - dense: {units: 3, activation: softmax}
data: {source: {npz: data/tiny.npz}}
training: {epochs: 1, batch_size: 8, seed: 1}
"""


def script_text(tmp_path: Path, spec_text: str, name: str = "spec.yaml") -> str:
    spec = tmp_path / name
    spec.write_text(spec_text, encoding="utf-8")
    return generate_code(compile_spec(spec), script=True, output=tmp_path / "train.py").text


def write_script(tmp_path: Path, spec_text: str) -> Path:
    script = tmp_path / "code" / "train.py"
    script.parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "code" / "spec.yaml").write_text(spec_text, encoding="utf-8")
    compiled = compile_spec(tmp_path / "code" / "spec.yaml")
    script.write_text(generate_code(compiled, script=True, output=script).text, encoding="utf-8")
    return script


def temp_files(folder: Path) -> list[str]:
    return [str(p) for p in folder.rglob("*") if ".tmp" in p.name or p.name.startswith("tmp")]


# -- the script's text (no TensorFlow) ----------------------------------------------------------
def test_a_plain_classifier_script_has_no_code_the_spec_decided_away(tmp_path):
    text = script_text(tmp_path, PLAIN)
    for dead in (
        "and 1 == 3",
        "and 3 == 1",
        "and 1 == 1",
        "steps_per_epoch = None",
        "steps_per_epoch=steps_per_epoch",
        "limit(x_train, y_train, None)",
        "def limit(",
        "def class_weights(",
        "class_weight=",
        "num_classes=num_classes",
        "repeat=",
        "if repeat:",
    ):
        assert dead not in text, dead
    assert "if channels == 3:  # colour images for the greyscale model" in text


def test_the_options_a_spec_sets_are_still_rendered(tmp_path):
    """The same code, kept where the spec needs it: a limit, steps_per_epoch (the training data
    repeat), a class weight, one-hot labels, grey images for an RGB model."""
    text = script_text(tmp_path, EVERYTHING)
    assert "x_train, y_train = limit(x_train, y_train, 64)" in text
    assert "steps_per_epoch = 2" in text and "steps_per_epoch=steps_per_epoch," in text
    assert "repeat=repeat," in text and "if repeat:" in text
    assert "class_weight=class_weights(y_train, class_names)," in text
    assert "num_classes=num_classes" in text and "tf.one_hot(labels, num_classes)" in text
    assert "if channels == 1:  # grey images for the RGB model" in text


def training_calls(text: str, rows: int, batch_size: int) -> dict[str, Any]:
    """What run() (main()'s body) of a script's ``text`` gives compile_model, the training set's make_dataset,
    fit and the output losses from its training steps on (``steps_per_epoch`` or ``steps``) to
    its fit, run with each stubbed (no TensorFlow): ``rows`` training rows, ``--batch-size``
    ``batch_size``. The keywords left out are filled with their defaults (make_dataset's
    ``repeat=False``, fit's ``steps_per_epoch=None``)."""
    run = next(node for node in ast.parse(text).body if getattr(node, "name", "") == "run")
    names = [{getattr(target, "id", "") for target in getattr(node, "targets", [])} for node in run.body]
    start = next(i for i, assigned in enumerate(names) if assigned & {"steps_per_epoch", "steps"})
    end = next(i for i, assigned in enumerate(names) if "history" in assigned)
    calls: dict[str, Any] = {"print": []}

    def make_dataset(x: Any, y: Any, batch: int, **options: Any) -> str:
        if options.get("training"):
            calls["train"] = {"batch": batch, "repeat": options.get("repeat", False)}
        return "dataset"

    def fit(train: Any, **options: Any) -> None:
        calls["fit_steps"] = options.get("steps_per_epoch")

    data = np.zeros((rows, 1))
    namespace: dict[str, Any] = {
        "args": argparse.Namespace(batch_size=batch_size, epochs=3),
        **{name: data for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")},
        "scale": None,
        "augmentation": None,
        "out": None,
        "num_classes": 10,
        "class_names": [],
        "class_weights": lambda y, names: None,
        "make_dataset": make_dataset,
        "compile_model": lambda model, total: calls.update(total=total),
        "model": argparse.Namespace(fit=fit),
        "build_callbacks": lambda out: [],
        "OutputLosses": argparse.Namespace,
        "print": calls["print"].append,
    }
    code = ast.Module(body=run.body[start : end + 1], type_ignores=[])
    exec(compile(code, "train.py", "exec"), namespace)
    if "output_losses" in namespace:
        calls["train_rows"] = namespace["output_losses"].train_rows
    return calls


@pytest.mark.parametrize("spec_text", [EVERYTHING, TASK], ids=["classifier", "two-outputs"])
def test_steps_per_epoch_edited_to_none_trains_as_a_spec_without_it(tmp_path, spec_text):
    """``steps_per_epoch = N`` edited to ``None`` (its comment says so) trains on the whole
    training set once an epoch, as the script of the spec without it does: the same schedule
    length, batch, no repeat, no steps for fit, the same rows for the output losses. Before, the
    script failed (``None * epochs``), or repeated the data with no end to an epoch."""
    steps = re.search(r"\n  steps_per_epoch: (\d+)\n", spec_text)
    assert steps is not None
    text = script_text(tmp_path, spec_text)
    line = f"    steps_per_epoch = {steps[1]}\n"
    assert "    # spec without it): no repeat, each epoch the whole training set once\n" + line in text
    without = script_text(tmp_path, spec_text.replace(steps[0], "\n"), "without.yaml")
    for rows in (40, 5):  # (5: fewer than a batch, which the repeat trains on as one batch of 5)
        edited = training_calls(text.replace(line, "    steps_per_epoch = None\n"), rows, 16)
        assert edited == training_calls(without, rows, 16)
        assert edited["train"] == {"batch": 16, "repeat": False} and edited["fit_steps"] is None
        assert edited["total"] == 3 * -(-rows // 16) and edited["print"] == []
    kept = training_calls(text, 5, 16)  # (as generated: the repeat)
    assert kept["train"] == {"batch": 5, "repeat": True} and kept["fit_steps"] == int(steps[1])
    assert kept["total"] == 3 * int(steps[1]) and len(kept["print"]) == 1


def functions(text: str, script: Path | None = None) -> dict[str, Any]:
    """The script's functions, without TensorFlow (only what the output functions and
    ``parse_args`` use); ``script`` is the ``__file__`` they see."""
    tree = ast.parse(text)
    kept = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    namespace: dict[str, Any] = {"Path": Path, "time": time, "argparse": argparse, "__file__": str(script)}
    exec(compile(ast.Module(body=kept, type_ignores=[]), "train.py", "exec"), namespace)
    return namespace


def test_the_default_folder_is_new_for_every_run(tmp_path, monkeypatch):
    new_run_folder = functions(script_text(tmp_path, PLAIN))["new_run_folder"]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(time, "strftime", lambda fmt: "20260102-030405")
    assert new_run_folder("tiny") == Path("runs/tiny-20260102-030405")
    assert new_run_folder("tiny") == Path("runs/tiny-20260102-030405-2")  # the same second
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [
        "tiny-20260102-030405",
        "tiny-20260102-030405-2",
    ]


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path):
    found = functions(script_text(tmp_path, PLAIN))
    target = tmp_path / "out" / "metrics.json"
    target.parent.mkdir()
    found["write_text"](target, "old")

    def half(temp):
        temp.write_text("half of the new one")
        raise OSError("disk full")

    with pytest.raises(OSError):
        found["write_atomic"](target, half)
    assert target.read_text() == "old" and sorted(p.name for p in target.parent.iterdir()) == ["metrics.json"]


# -- the options (parse_args, without TensorFlow) -----------------------------------------------
def parse(script: Path, *args: str, capsys) -> tuple[int, str]:
    """The script's own ``parse_args`` on ``args``: (exit status or 0, the error line)."""
    found = functions(script.read_text(encoding="utf-8"), script)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", ["train.py", *args])
        try:
            found["parse_args"]()
        except SystemExit as stop:
            return stop.code, capsys.readouterr().err.strip().splitlines()[-1]
    return 0, ""


def test_main_reads_its_options_before_anything_else(tmp_path):
    """`main` starts with `parse_args`, so a refused option stops the script before its output
    folder is made or its data is read."""
    tree = ast.parse(script_text(tmp_path, NPZ))
    [main] = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "main"]
    assert ast.get_docstring(main) is not None  # (then its one statement)
    assert [ast.unparse(s) for s in main.body[1:]] == ["in_run_folder(parse_args(argv), 'npz_run', run)"]


def test_a_run_that_writes_nothing_leaves_no_folder_it_made(tmp_path, monkeypatch):
    """A run that stops before writing a file (unreadable data, Ctrl-C while loading) removes
    the output folder it made, as cnnspec train does; a folder that was there, or one the run
    wrote into, stays."""
    (tmp_path / "spec.yaml").write_text(NPZ, encoding="utf-8")
    functions = script_functions(tmp_path / "spec.yaml")
    functions["time"] = time  # the run folder's timestamp; script_functions keeps data imports only
    in_run_folder = functions["in_run_folder"]
    monkeypatch.chdir(tmp_path)

    def fails(args: argparse.Namespace, out: Path) -> None:
        assert out.is_dir()
        raise SystemExit("expected image data; data/tiny.npz is not an npz file")

    def writes_then_fails(args: argparse.Namespace, out: Path) -> None:
        (out / "bad_files.txt").write_text("x\tunreadable\n")
        raise KeyboardInterrupt

    for out in (None, tmp_path / "new" / "run"):
        with pytest.raises(SystemExit):
            in_run_folder(argparse.Namespace(out=out), "npz_run", fails)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    assert not (tmp_path / "new" / "run").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit):
        in_run_folder(argparse.Namespace(out=tmp_path / "empty"), "npz_run", fails)
    assert (tmp_path / "empty").is_dir()
    with pytest.raises(KeyboardInterrupt):
        in_run_folder(argparse.Namespace(out=None), "npz_run", writes_then_fails)
    [kept] = (tmp_path / "runs").iterdir()
    assert (kept / "bad_files.txt").is_file()


def test_bad_options_and_a_used_out_folder_are_refused(tmp_path, capsys):
    """Exit status 2 and argparse's one-line error: `--epochs 0`, a data path that does not
    exist, a `--out` that is a file or already has files (unless `--force`)."""
    script = write_script(tmp_path, NPZ)
    (tmp_path / "code" / "data").mkdir()
    (tmp_path / "code" / "data" / "tiny.npz").write_bytes(b"")
    used = tmp_path / "used"
    used.mkdir()
    (used / "metrics.json").write_text("{}")
    missing = tmp_path / "nowhere.npz"

    def refused(*args: str) -> str:
        code, line = parse(script, *args, capsys=capsys)
        assert code == 2 and line.startswith("train.py: error: argument "), (code, line)
        return line

    assert refused("--epochs", "0").endswith("--epochs: expected a positive integer; received 0")
    assert refused("--batch-size", "-1").endswith("received -1")
    assert refused("--data", str(missing)).endswith(f"--data: {missing} does not exist")
    assert refused("--out", str(used)).endswith(
        f"--out: {used} already has files; add --force to replace them"
    )
    assert refused("--out", str(used / "metrics.json")).endswith("is a file")
    # a file on the way to --out, or a file runs where the default run folder goes: refused
    # here, not by a traceback (exit 1) when the folder is made
    assert refused("--out", str(used / "metrics.json" / "sub")).endswith(
        f"--out: expected a folder; {used / 'metrics.json'} is a file (in the way of "
        f"{used / 'metrics.json' / 'sub'})"
    )
    assert parse(script, "--out", str(used), "--force", capsys=capsys) == (0, "")
    assert parse(script, "--out", str(tmp_path / "new"), capsys=capsys) == (0, "")
    assert parse(script, capsys=capsys) == (0, "")  # the default data, found beside the script
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(used)
        (used / "runs").write_text("a file of the user's")
        assert parse(script, capsys=capsys) == (
            2,
            "train.py: error: expected a folder runs/ (the default --out); runs is a file",
        )


# -- runs ---------------------------------------------------------------------------------------
#: A classifier with blocks, a repeat, augmentation, a warm-up schedule, callbacks, class weights
#: and a top-2 metric, reading an .npz found relative to the script (not the working folder).
SCRIPT_SPEC = """\
cnnspec: 1
name: tiny
description: A tiny classifier for the generated-script test.
input: {shape: [8, 8, 1]}
vars: {width: 4}
blocks:
  unit:
    params: {filters: int}
    layers:
      - conv2d: {filters: "${filters}", kernel_size: 3, padding: same}
      - batch_norm
      - activation: relu
model:
  - repeat: {times: 2, as: i, layers: [unit: {filters: "${width * (i + 1)}"}]}
  - global_avg_pool2d
  - dense: {units: 3, activation: softmax}
augmentation:
  - random_translation: {height_factor: 0.1, width_factor: 0.1, fill_mode: constant}
data: {source: {npz: data/tiny.npz}, validation_split: 0.2}
training:
  epochs: 3
  batch_size: 16
  optimizer: {adam: {learning_rate: {exponential_decay: {decay_steps: 10, decay_rate: 0.9, warmup_steps: 2}}}}
  metrics: [accuracy, {top_k_accuracy: {k: 2}}]
  callbacks:
    - early_stopping: {monitor: val_loss, patience: 2}
    - csv_logger
    - model_checkpoint: {monitor: val_accuracy}
  class_weight: balanced
  seed: 7
"""


@pytest.mark.slow
def test_a_run_trains_into_a_new_folder_and_force_replaces_its_files(tmp_path):
    """The script, run from another folder, finds its data beside itself, trains one epoch
    into a new runs/tiny-<timestamp> and writes every result; with `--force` a second run
    replaces the files of that folder (a refused one is tested above, without TensorFlow)."""
    rng = np.random.default_rng(0)
    data = tmp_path / "code" / "data"
    data.mkdir(parents=True)
    x = rng.integers(0, 255, (75, 8, 8), dtype=np.uint8)
    y = np.arange(75) % 3
    np.savez(data / "tiny.npz", x_train=x[:60], y_train=y[:60], x_test=x[60:], y_test=y[60:])
    script = write_script(tmp_path, SCRIPT_SPEC)
    work = tmp_path / "work"
    work.mkdir()

    first = run_script(script, "--epochs", "1", "--batch-size", "8", cwd=work)
    folders = list((work / "runs").iterdir())
    assert len(folders) == 1 and re.fullmatch(r"tiny-\d{8}-\d{6}", folders[0].name), folders
    out = folders[0]
    assert str(Path("runs") / out.name) in first.stdout
    for name in ("model.keras", "metrics.json", "classification_report.txt", "history.png"):
        assert (out / name).is_file(), name
    assert (out / "confusion_matrix.png").stat().st_size > 1000
    assert (out / "training_log.csv").is_file() and (out / "checkpoints" / "best.keras").is_file()
    assert temp_files(out) == []
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "tiny" and metrics["epochs"] == 1
    assert set(metrics) >= {"test_loss", "test_accuracy", "test_top_2_accuracy"}
    assert len(metrics["confusion_matrix"]) == 3
    assert sum(map(sum, metrics["confusion_matrix"])) == 15
    assert "precision" in (out / "classification_report.txt").read_text()
    assert "cnnspec" not in first.stdout + first.stderr.replace(str(ROOT), "")

    (out / "metrics.json").write_text("stale")
    (out / "bad_files.txt").write_text("an earlier run's\n")
    (out / "notes.txt").write_text("the user's")
    run_script(script, "--epochs", "1", "--batch-size", "8", "--out", str(out), "--force", cwd=work)
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 1
    assert temp_files(out) == []
    # the earlier run's files went first (its bad_files.txt told of images this run never
    # read, and its training_log.csv would have been appended to); the user's stay
    assert not (out / "bad_files.txt").exists() and (out / "notes.txt").read_text() == "the user's"
    log = (out / "training_log.csv").read_text().splitlines()
    assert len(log) == 2 and log[1].startswith("1,")  # cnnspec train's rows: epochs from 1
    assert len(list((work / "runs").iterdir())) == 1


@pytest.mark.slow
def test_the_scripts_training_log_has_a_row_per_epoch_of_every_phase(tmp_path):
    """Each phase's fit started Keras' CSVLogger again, which emptied the file: only the last
    phase's rows were left, numbered from 0. The script's own TrainingLog appends and counts
    from 1, as cnnspec train's training_log.csv does."""
    text = TINY.replace(
        "training: {epochs: 1, batch_size: 16, seed: 1}",
        "training:\n  batch_size: 16\n  seed: 1\n  callbacks: [csv_logger]\n"
        "  phases: [{epochs: 2, freeze: ['conv2d_*']}, {epochs: 1}]",
    )
    script = write_script(tmp_path, text)
    run_script(script, "--out", str(tmp_path / "out"), cwd=tmp_path)
    rows = [row.split(",") for row in (tmp_path / "out" / "training_log.csv").read_text().splitlines()]
    assert [row[0] for row in rows] == ["epoch", "1", "2", "3"]
    # cnnspec train's last columns: the rate each epoch started at, its seconds and its phase
    assert rows[0][-3:] == ["learning_rate", "seconds", "phase"]
    assert [row[-1] for row in rows[1:]] == ["1", "1", "2"]
    assert {row[-3] for row in rows[1:]} == {repr(float(np.float32(0.001)))}  # (Adam's default)


class _Clock:
    """time.perf_counter for the script's TrainingLog: each call 0.25 s after the one before."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 0.25
        return self.now


@pytest.mark.slow  # (Keras' Callback, and train's writer beside it: no run)
def test_the_scripts_training_log_is_written_as_cnnspec_train_writes_it(tmp_path):
    """The script's csv_logger wrote Keras' columns alone (CSVLogger's sorted keys); cnnspec
    train's training_log.csv (its history.csv) also has the rate each epoch started at, its
    seconds and, with training.phases, its phase. The script's TrainingLog, fed the logs of four
    epochs over the fixture's three phases, writes the file train's writer writes of those rows."""
    import keras

    from cnnspec.training.callbacks import history_csv
    from tests.conftest import FIXTURES

    spec = (
        (FIXTURES / "codegen" / "frozen.yaml")
        .read_text()
        .replace("  seed: 11\n", "  seed: 11\n  callbacks: [csv_logger]\n")
    )
    tree = ast.parse(script_text(tmp_path, spec))
    wanted = {"TrainingLog", "training_log", "csv_cell", "phase_of", "write_atomic", "write_text", "PHASES"}
    kept = [
        node
        for node in tree.body
        if getattr(node, "name", None) in wanted
        or (isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) in wanted)
    ]
    assert len(kept) == len(wanted)
    namespace: dict[str, Any] = {"keras": keras, "np": np, "Path": Path, "time": _Clock()}
    exec(compile(ast.Module(body=kept, type_ignores=[]), "train.py", "exec"), namespace)

    class Model:
        optimizer = argparse.Namespace(learning_rate=np.float32(0.05))

    log = namespace["training_log"](tmp_path / "training_log.csv")
    log.set_model(Model())
    rows = []
    for epoch, phase in enumerate([1, 1, 2, 3]):
        logs = {"accuracy": 0.25 * epoch, "loss": np.float32(2.0 - epoch / 3), "val_loss": 1.5}
        if epoch == 3:
            logs["learning_rate"] = 0.025  # (reduce_lr_on_plateau's key: the rate after the epoch)
        log.on_epoch_begin(epoch)
        log.on_epoch_end(epoch, logs)
        loss = float(np.float32(2.0 - epoch / 3))
        rows.append(
            {"epoch": epoch + 1, "accuracy": 0.25 * epoch, "loss": loss, "val_loss": 1.5}
            | {"learning_rate": float(np.float32(0.05)), "seconds": 0.25, "phase": phase}
        )
    assert (tmp_path / "training_log.csv").read_text() == history_csv(rows)
    assert (
        (tmp_path / "training_log.csv")
        .read_text()
        .startswith("epoch,accuracy,loss,val_loss,learning_rate,seconds,phase\n1,0,2,1.5,")
    )


def test_the_scripts_history_plot_marks_where_each_phase_starts(tmp_path, monkeypatch):
    """history["phase"] (the phase of each epoch) draws a dashed line half an epoch before each
    phase after the first, as cnnspec's history.png does; it is no curve of its own."""
    import matplotlib.axes

    from tests.conftest import FIXTURES

    functions = script_functions(FIXTURES / "codegen" / "frozen.yaml")
    lines: list[float] = []
    monkeypatch.setattr(matplotlib.axes.Axes, "axvline", lambda axis, x, **_: lines.append(x))
    history = {"loss": [1.0, 0.8, 0.7, 0.6], "val_loss": [1.1, 0.9, 0.8, 0.7], "phase": [1, 1, 2, 3]}
    functions["plot_history"](history, tmp_path)
    assert lines == [2.5, 3.5] and (tmp_path / "history.png").stat().st_size > 1000
