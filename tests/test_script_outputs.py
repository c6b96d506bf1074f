"""What `codegen --script`'s training program does with its output folder and its options.

As `cnnspec train`: each run gets a new folder `runs/<name>-<YYYYmmdd-HHMMSS>`; an `--out`
that already has files is refused (exit status 2, before any data is read) unless `--force`;
every file is written to a temp file and renamed (nothing half-written, no temp file left).
Bad options (`--epochs 0`, a data path that does not exist) stop the script with exit status 2
and argparse's one-line error before the output folder is made. And the script holds no code
that the spec decides away (a runtime test of two template constants, calls that do nothing).

The runs are tiny (64 digits, one epoch) and each costs a TensorFlow start: the refusals are
checked on the processes that one trained run needs anyway where possible.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cnnspec.api import compile_spec
from cnnspec.backends.python_emitter import generate_code
from tests.conftest import run_script

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
data: {source: digits, limit: 64}
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


def run(script: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The script in a fresh Python, whatever its exit status (see conftest.run_script)."""
    command = [sys.executable, str(script), *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=600, check=False)


def refused(done: subprocess.CompletedProcess[str], *words: str) -> str:
    """The error line of a script that argparse stopped: exit status 2, no traceback."""
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-4000:]
    assert "Traceback" not in done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("train.py: error: argument "), done.stderr
    for word in words:
        assert word in line, line
    return line


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` (relative path → sha256)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


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
    assert "repeat=True," in text and "if repeat:" in text
    assert "class_weight=class_weights(y_train, class_names)," in text
    assert "num_classes=num_classes" in text and "tf.one_hot(labels, num_classes)" in text
    assert "if channels == 1:  # grey images for the RGB model" in text


def functions(text: str) -> dict[str, Any]:
    """The script's functions, without TensorFlow (only what the output functions use)."""
    tree = ast.parse(text)
    kept = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    namespace: dict[str, Any] = {"Path": Path, "time": time}
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


# -- runs ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_run_gets_a_new_folder_and_a_used_one_is_refused_unless_forced(tmp_path):
    script = write_script(tmp_path, TINY)
    work = tmp_path / "work"
    work.mkdir()

    first = run_script(script, "--epochs", "1", cwd=work)
    folders = list((work / "runs").iterdir())
    assert len(folders) == 1 and re.fullmatch(r"tiny-\d{8}-\d{6}", folders[0].name), folders
    out = folders[0]
    assert str(Path("runs") / out.name) in first.stdout
    for name in ("model.keras", "metrics.json", "classification_report.txt", "history.png"):
        assert (out / name).is_file(), name
    assert (out / "confusion_matrix.png").is_file() and temp_files(out) == []
    before = snapshot(out)

    # the same folder again: refused before any work, the first run's files as they were
    refused(run(script, "--epochs", "1", "--out", str(out), cwd=work), "--out", str(out), "--force")
    assert snapshot(out) == before
    assert len(list((work / "runs").iterdir())) == 1

    (out / "metrics.json").write_text("stale")
    run_script(script, "--epochs", "1", "--out", str(out), "--force", cwd=work)
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 1
    assert temp_files(out) == []
    assert len(list((work / "runs").iterdir())) == 1


@pytest.mark.slow
def test_bad_options_stop_the_script_before_its_folder_is_made(tmp_path):
    script = write_script(tmp_path, NPZ)
    data = tmp_path / "code" / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (12, 8, 8), dtype=np.uint8)
    np.savez(data / "tiny.npz", x_train=x, y_train=np.arange(12) % 3, x_test=x[:6], y_test=np.arange(6) % 3)
    work = tmp_path / "work"
    work.mkdir()

    refused(run(script, "--epochs", "0", cwd=work), "--epochs", "positive integer", "received 0")
    missing = tmp_path / "nowhere.npz"
    out = work / "run"
    line = refused(run(script, "--data", str(missing), "--out", str(out), cwd=work), "--data", str(missing))
    assert line.endswith(f"{missing} does not exist")
    assert not (work / "runs").exists() and not out.exists()
