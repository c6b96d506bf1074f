"""Commands that write into a run folder take its lock, also where the run is reached through
a checkpoint (``evaluate RUN/checkpoints/best.keras``, ``visualize RUN/checkpoints/best.keras``)
or through ``predict --out RUN/masks``. Before, they wrote into the run without it, beside a
training that held the folder (whose leftover cleanup may take their temp files)."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cnnspec.cli.app import app
from tests.test_import import TINY_KERAS


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A run folder (lock.json) with a checkpoint, the tiny model of the import tests."""
    folder = tmp_path / "run"
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "lock.json").write_text("{}", encoding="utf-8")
    shutil.copy(TINY_KERAS, folder / "checkpoints" / "best.keras")
    return folder


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _refused_while_held(run: Path, *args: str) -> str:
    """Run the command while this process holds ``run``'s lock as a training would; it must
    exit 2 with the busy message and write nothing into the run. Returns its output."""
    from cnnspec.training.runlock import LOCK_NAME, acquire

    before = [name for name in _files(run) if name != LOCK_NAME]
    with acquire(run, ["cnnspec", "train", "--resume", str(run)]):
        result = CliRunner().invoke(app, list(args))
    output = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert f"the run folder {run} is in use by process {os.getpid()} (cnnspec train --resume" in output
    assert "Traceback" not in output and "internal error" not in output
    assert [name for name in _files(run) if name != LOCK_NAME] == before
    return output


def test_evaluating_a_checkpoint_of_a_run_another_process_holds_is_refused(run):
    _refused_while_held(run, "evaluate", str(run / "checkpoints" / "best.keras"), "--data", "digits")


def test_visualizing_a_checkpoint_of_a_run_another_process_holds_is_refused(run):
    _refused_while_held(run, "visualize", str(run / "checkpoints" / "best.keras"), "filters")


def test_predicting_into_a_run_another_process_holds_is_refused(run, tmp_path):
    image = tmp_path / "image.npy"
    np.save(image, np.zeros((16, 16, 3), dtype="float32"))  # (the model's input)
    _refused_while_held(run, "predict", str(TINY_KERAS), str(image), "--out", str(run / "masks"))
    assert not (run / "masks").exists()


def test_predict_takes_the_runs_lock_only_for_a_model_that_writes_masks(tmp_path):
    """`predict --out RUN/x` of a classifier writes nothing there: refused while the run
    trained, where it had printed its predictions. The lock is taken only where masks may be
    written: an export's record or the run's spec with a segmentation output, or a model file
    that neither describes (TINY_KERAS alone, refused above)."""
    import json

    from cnnspec.analysis.settings import training_config
    from cnnspec.api import compile_spec
    from cnnspec.cli.predict import _writes_masks
    from cnnspec.export.runtimes import describe_output
    from tests.conftest import SPECS_DIR
    from tests.test_damaged_runs import make_run

    classifier = tmp_path / "c.onnx"
    classifier.write_bytes(b"not read")
    (tmp_path / "c.onnx.json").write_text(json.dumps({"output": {"binary": False}}))
    assert _writes_masks(classifier, None, False) is False
    tasks = training_config(compile_spec(SPECS_DIR / "unet_shapes.yaml")).tasks
    masks = tmp_path / "m.onnx"
    masks.write_bytes(b"not read")
    (tmp_path / "m.onnx.json").write_text(json.dumps({"outputs": [describe_output(t) for t in tasks]}))
    assert _writes_masks(masks, None, False) is True
    (tmp_path / "broken.onnx").write_bytes(b"not read")  # (no record: the command says so itself)
    assert _writes_masks(tmp_path / "broken.onnx", None, False) is True
    run = make_run(tmp_path / "run")  # a classifier's run
    assert _writes_masks(run, None, False) is False
    assert _writes_masks(TINY_KERAS, None, False) is True  # (no spec tells: the lock is taken)


@pytest.mark.parametrize(
    ("code", "fix"),
    [(errno.EROFS, "make that disk writable"), (errno.EACCES, "get permission to write there")],
)
def test_exporting_from_a_run_folder_that_cannot_be_written_points_to_o(run, monkeypatch, code, fix):
    """`export RUN -f tflite` on a read-only run folder said only that the lock file could not
    be created; `-o ELSEWHERE` works there (it takes no lock): the hint says so."""
    from cnnspec.training import runlock

    real_open = os.open

    def refused(path, *args, **kwargs):
        if str(path).endswith(runlock.LOCK_NAME):
            raise OSError(code, os.strerror(code))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(runlock.os, "open", refused)
    model = run / "checkpoints" / "best.keras"
    result = CliRunner().invoke(app, ["export", str(model), "-f", "tflite"])
    said = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    lock = run / runlock.LOCK_NAME
    assert (
        f"error: expected a run folder this process can write; can't create {lock}: {os.strerror(code)}"
        in said
    )
    assert f"hint: {fix}, or export it elsewhere with -o PATH" in said
    assert not list((run / "checkpoints").glob("*.tflite"))


def test_exporting_from_a_run_another_process_holds_names_it_as_typed(run, tmp_path, monkeypatch):
    """export named the busy run by its absolute path (`/tmp/…/run is in use`), where every
    other command names it as it was typed (`run is in use`)."""
    monkeypatch.chdir(tmp_path)
    typed = Path("run")
    from cnnspec.training.runlock import LOCK_NAME, acquire

    with acquire(run, ["cnnspec", "train", "--resume", str(run)]):
        result = CliRunner().invoke(
            app, ["export", str(typed / "checkpoints" / "best.keras"), "-f", "tflite"]
        )
    output = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert output.startswith(f"error: the run folder {typed} is in use by process {os.getpid()}")
    assert LOCK_NAME not in _files(run)
