"""`cnnspec train` end to end: run folder, options, determinism, progress output (TensorFlow)."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from cnnspec.api import compile_spec
from cnnspec.cli.app import app
from cnnspec.errors import UsageError

pytestmark = pytest.mark.slow

TINY = """\
cnnspec: 1
name: tiny
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}
  - global_avg_pool2d
  - dense: {units: 10, activation: softmax}
augmentation:
  - random_translation: {height_factor: 0.1, width_factor: 0.1}
data: {source: digits, limit: 96}
"""


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def run(tmp_path: Path, text: str, out: str = "run", display=None, **kwargs):
    from cnnspec.training.trainer import train

    compiled = compile_spec(write(tmp_path, text))
    return train(compiled, out=tmp_path / out, display=display, **kwargs)


def test_run_folder_is_complete(tmp_path, capsys):
    from cnnspec.training.progress import Display

    given = {}

    def broken_report(*args, **kwargs):
        given.update(kwargs)
        raise RuntimeError("no report today")

    buffer = io.StringIO()
    display = Display("plain", Console(file=buffer, width=200))
    spec = TINY + "training: {epochs: 2, batch_size: 32, seed: 5}\n"
    result = run(tmp_path, spec, display=display, write_report=broken_report)
    folder = result.run_dir
    # the report hook (cnnspec train passes reporting.html's) failing costs a warning, not the run
    assert "report.html was not written (RuntimeError: no report today)" in capsys.readouterr().err
    assert "html_report" not in result.files and not (folder / "report.html").exists()
    expected = {
        "spec.yaml",
        "resolved.yaml",
        "lock.json",
        "model.keras",
        "history.json",
        "history.csv",
        "metrics.json",
        "history.png",
        "confusion_matrix.png",
        "classification_report.txt",
    }
    assert expected <= {p.name for p in folder.iterdir()}
    assert not (folder / "state").exists()  # snapshots go once the run is done
    assert not [p for p in folder.rglob(".*")]  # no temp files left behind
    metrics = json.loads((folder / "metrics.json").read_text())
    # the hook is given the model, the data and the test outputs the results were counted from
    outputs, y_test = np.asarray(given["outputs"]), given["dataset"].y_test
    assert given["model"] is not None and outputs.shape == (len(y_test), 10)
    assert float((outputs.argmax(axis=1) == y_test).mean()) == metrics["test_accuracy"]
    for key in (
        "test_accuracy",
        "test_loss",
        "epochs_run",
        "train_seconds",
        "images_per_second",
        "per_class",
    ):
        assert key in metrics
    assert metrics["epochs_run"] == 2 and set(metrics["per_class"]["3"]) == {
        "precision",
        "recall",
        "f1",
        "support",
    }
    history = json.loads((folder / "history.json").read_text())
    assert history["epoch"] == [1, 2] and len(history["val_loss"]) == 2
    lock = json.loads((folder / "lock.json").read_text())
    assert lock["seed"] == 5 and lock["spec_hash"] == compile_spec(tmp_path / "spec.yaml").spec_hash()
    assert lock["data"]["kind"] == "digits" and len(lock["data"]["content_hash"]) == 64
    assert {"python", "tensorflow", "keras", "numpy", "cnnspec"} <= set(lock["versions"])
    assert (folder / "history.png").read_bytes()[:4] == b"\x89PNG"
    text = buffer.getvalue()
    assert "epoch 1/2" in text and "epoch 2/2" in text and "val_loss" in text
    # the resolved spec is a spec: it compiles, with the same hash as the run's
    assert compile_spec(folder / "resolved.yaml").spec_hash() == lock["spec_hash"]
    # the saved model loads (safe mode) and predicts like the metrics say
    from cnnspec.api import build_model
    from cnnspec.training.modelfile import load_model

    model = load_model(folder / "model.keras", compile=True)
    assert model.count_params() == build_model(compile_spec(tmp_path / "spec.yaml")).count_params()


def test_same_seed_same_history_when_deterministic(tmp_path):
    text = TINY + "training: {epochs: 2, seed: 11, deterministic: true}\n"
    first = run(tmp_path, text, "a").history
    second = run(tmp_path, text, "b").history

    def strip(rows):
        return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]

    assert strip(first) == strip(second)


def test_many_options_together(tmp_path):
    text = TINY.replace("limit: 96", "limit: 64") + (
        "training:\n"
        "  epochs: 2\n"
        "  batch_size: 16\n"
        "  steps_per_epoch: 3\n"
        "  optimizer: {sgd: {momentum: 0.9, nesterov: true, clipnorm: 1.0, weight_decay: 0.0001,\n"
        "    learning_rate: {cosine_decay: {initial_learning_rate: 0.05, warmup_steps: 2}}}}\n"
        "  loss: {categorical_crossentropy: {label_smoothing: 0.1}}\n"
        "  metrics: [accuracy, {top_k_accuracy: {k: 3}}, precision, recall, auc]\n"
        "  class_weight: balanced\n"
        "  callbacks:\n"
        "    - early_stopping: {monitor: val_accuracy, patience: 5, restore_best_weights: true}\n"
        "    - model_checkpoint: {monitor: val_loss}\n"
        "    - csv_logger\n"
        "    - terminate_on_nan\n"
        "  seed: 1\n"
    )
    result = run(tmp_path, text)
    row = result.history[-1]
    for key in (
        "loss",
        "accuracy",
        "top_3_accuracy",
        "precision",
        "recall",
        "auc",
        "val_auc",
        "learning_rate",
    ):
        assert key in row
    assert (result.run_dir / "checkpoints" / "best.keras").is_file()
    assert (result.run_dir / "training_log.csv").read_text().startswith("epoch,")
    assert result.metrics["best_epoch"] in (1, 2)
    assert "test_top_3_accuracy" in result.metrics


def test_binary_npz_with_exponential_warmup_and_adamw(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(48, 6, 6, 1)).astype("uint8")
    y = (x.mean(axis=(1, 2, 3)) > 127).astype("int64")
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x[:10], y_test=y[:10])
    text = (
        "cnnspec: 1\nname: bin\ninput: {shape: [6, 6, 1]}\nmodel:\n  - flatten\n"
        "  - dense: {units: 1, activation: sigmoid}\n"
        "data: {source: {npz: d.npz}, validation_split: 0.25}\n"
        "training:\n  epochs: 2\n  batch_size: 8\n"
        "  optimizer: {adamw: {learning_rate: {exponential_decay: {decay_steps: 4, decay_rate: 0.5,"
        " warmup_steps: 3}}}}\n"
        "  metrics: [accuracy, auc]\n  seed: 2\n"
    )
    result = run(tmp_path, text)
    assert result.metrics["test_images"] == 10 and set(result.metrics["per_class"]) == {"0", "1"}
    from cnnspec.training.modelfile import load_model

    load_model(result.run_dir / "model.keras", compile=True)  # the custom warm-up schedule reloads


def test_mixed_precision_and_cli_quiet(tmp_path, runner):
    spec = write(tmp_path, TINY + "training: {epochs: 1, seed: 3}\nruntime: {mixed_precision: true}\n")
    out = tmp_path / "cli-run"
    result = runner.invoke(
        app, ["train", str(spec), "--quiet", "--no-report", "--out", str(out), "--batch-size", "48"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("test accuracy") and str(out) in result.output
    lock = json.loads((out / "lock.json").read_text())
    assert lock["dtype_policy"].startswith("mixed_") and lock["overrides"] == ["training.batch_size=48"]
    import keras

    assert keras.config.dtype_policy().name == "float32"  # restored after the run
    again = runner.invoke(app, ["train", str(spec), "--out", str(out)])
    assert again.exit_code == 2 and "already" in again.output


def test_resume_refuses_a_changed_spec(tmp_path):
    from cnnspec.training.trainer import train

    spec = write(tmp_path, TINY + "training: {epochs: 1, seed: 3}\n")
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "lock.json").write_text(json.dumps({"spec_hash": "0" * 64, "seed": 3}))
    with pytest.raises(UsageError, match="hash differs"):
        train(compile_spec(spec), resume=folder)
    with pytest.raises(UsageError, match=r"readable lock\.json"):
        train(compile_spec(spec), resume=tmp_path)


def test_a_busy_run_folder_is_refused_and_a_new_run_removes_killed_writes_leftovers(tmp_path, runner):
    from cnnspec.training.runlock import LOCK_NAME, acquire

    spec = write(tmp_path, TINY + "training: {epochs: 1, seed: 3}\n")
    out = tmp_path / "run"
    out.mkdir()
    with acquire(out, ["cnnspec", "train", "other.yaml", "--out", str(out)]):
        busy = runner.invoke(app, ["train", str(spec), "--quiet", "--out", str(out)])
    assert busy.exit_code == 2, busy.output
    message = " ".join(busy.output.split())  # unwrapped
    assert f"in use by process {os.getpid()} (cnnspec train other.yaml" in message
    assert "Traceback" not in busy.output and "internal error" not in busy.output
    assert not (out / LOCK_NAME).exists() and not list(out.iterdir())  # the refused run wrote nothing

    # what a SIGKILLed run leaves: temp files of its atomic writes and its lock file
    (out / ".lock.json.k2j4h1x0.json").write_text("{half")
    (out / ".history.json.abcd_123.json").write_text("{half")
    (out / LOCK_NAME).write_text(json.dumps({"pid": 999999, "command": ["cnnspec", "train"]}))
    # (without its page: nothing here reads it)
    result = runner.invoke(app, ["train", str(spec), "--quiet", "--no-report", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"removed 2 temp file(s) left in {out}" in " ".join(result.output.split())
    assert (out / "metrics.json").is_file() and not [p for p in out.rglob(".*")]

    # a folder that is neither new nor a run is refused before anything in it is touched
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    (mine / ".draft.txt.abcd1234.txt").write_text("temp-shaped, but no run's")
    refused = runner.invoke(app, ["train", str(spec), "--quiet", "--out", str(mine)])
    assert refused.exit_code == 2 and "already has files" in " ".join(refused.output.split())
    assert sorted(p.name for p in mine.iterdir()) == [".draft.txt.abcd1234.txt", "notes.txt"]
