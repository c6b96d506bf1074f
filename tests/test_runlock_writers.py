"""Commands that write into a run folder take its lock, also where the run is reached through
a checkpoint (``evaluate RUN/checkpoints/best.keras``, ``visualize RUN/checkpoints/best.keras``)
or through ``predict --out RUN/masks``. Before, they wrote into the run without it, beside a
training that held the folder (whose leftover cleanup may take their temp files)."""

from __future__ import annotations

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
