"""Out of memory while training (a batch too large for the GPU, another process holding it):
one clean error, not an internal one. The epochs done are saved as after Ctrl-C, the command
says how to go on (resume, or smaller batches), and `--resume` finishes the run.

TensorFlow's ResourceExhaustedError is raised inside `fit` by a callback at the start of the
second epoch: where a real allocation failure surfaces, which no test machine can be made to
reach on purpose."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cnnspec.cli.app import app
from tests.conftest import TINY_DIGITS_MODEL

SPEC = "cnnspec: 1\nname: memory\n" + TINY_DIGITS_MODEL + "training: {epochs: 2, batch_size: 32, seed: 3}\n"

#: What TensorFlow says, node list and advice included (the error keeps its first line).
OOM_TEXT = (
    "OOM when allocating tensor with shape[32,4,8,8] and type float on "
    "/job:localhost/replica:0/task:0/device:GPU:0 by allocator GPU_0_bfc\n"
    "\t [[{{node conv2d_1/convolution}}]]\n"
    "Hint: If you want to see a list of allocated tensors when OOM happens, add "
    "report_tensor_allocations_upon_oom to RunOptions for current allocation info."
)


@pytest.mark.slow
def test_memory_errors_are_told_from_others_in_one_line():
    import tensorflow as tf

    from cnnspec.errors import OOM_DETAIL_CHARS, out_of_memory

    assert out_of_memory(tf.errors.ResourceExhaustedError(None, None, OOM_TEXT)) == OOM_TEXT.splitlines()[0]
    long = tf.errors.ResourceExhaustedError(None, None, "OOM " + "x" * 1000)
    assert len(out_of_memory(long)) == OOM_DETAIL_CHARS and out_of_memory(long).endswith("…")
    assert out_of_memory(MemoryError("Unable to allocate 3.00 GiB")) == "Unable to allocate 3.00 GiB"
    assert out_of_memory(MemoryError()) == "MemoryError"
    assert out_of_memory(ValueError("OOM when allocating")) is None
    assert out_of_memory(tf.errors.InvalidArgumentError(None, None, "bad")) is None
    # in a graph function (fit): the line that says it, not the header nor the node's trace
    graph = (
        "Graph execution error:\n\nDetected at node conv2d_1/convolution defined at (most recent call "
        'last):\n  File "/usr/lib/python3.11/runpy.py", line 198, in _run_module_as_main\n\n' + OOM_TEXT
    )
    assert out_of_memory(tf.errors.ResourceExhaustedError(None, None, graph)) == OOM_TEXT.splitlines()[0]
    # a full disk under tf.data's cache file is raised as ResourceExhausted too: no memory error
    full = (
        "Graph execution error:\n\nrun/data-cache_0.data-00000-of-00001.tempstate1; No space left on device"
    )
    assert out_of_memory(tf.errors.ResourceExhaustedError(None, None, full)) is None


@pytest.mark.slow
def test_a_run_out_of_memory_keeps_its_epochs_and_resumes(tmp_path, runner, monkeypatch):
    import keras
    import tensorflow as tf

    from cnnspec.training import callbacks

    class Exhaust(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            if epoch == 1:
                raise tf.errors.ResourceExhaustedError(None, None, OOM_TEXT)

    spec_callbacks = callbacks.spec_callbacks

    def with_exhaust(*args: Any) -> dict[str, Any]:
        return {**spec_callbacks(*args), "exhaust": Exhaust()}

    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    run = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(callbacks, "spec_callbacks", with_exhaust)
        result = runner.invoke(app, ["train", str(spec), "--quiet", "--out", str(run)])
    assert result.exit_code == 1, result.output
    text = " ".join(result.stderr.split())
    assert "internal error" not in text and "Traceback" not in text
    assert f"error: out of memory in epoch 2, training with batches of 32: {OOM_TEXT.splitlines()[0]}" in text
    assert f"the state of its 1 whole epoch(s) is saved in {run}/state" in text
    assert "--batch-size 16" in text and "[[{{node" not in text
    assert f"resume with: cnnspec train {spec} --resume {run}" in text
    assert sorted(p.name for p in (run / "state").glob("epoch-*")) and not (run / "metrics.json").exists()
    # the memory is free again: the resume trains the second epoch only (the trainer the pasted
    # command runs, without its page)
    from cnnspec.api import compile_spec
    from cnnspec.training.trainer import train

    train(compile_spec(spec), resume=run)
    history = json.loads((Path(run) / "history.json").read_text(encoding="utf-8"))
    assert history["epoch"] == [1, 2] and (run / "model.keras").is_file()


def test_any_command_out_of_memory_is_a_clean_error(tmp_path, runner, monkeypatch):
    """Outside a training's epochs (building a model too large for the host, evaluating with
    batches too large for the device) memory running out is exit 1 with one line, not an
    internal error."""
    import cnnspec.backends.keras_builder as builder

    def exhausted(*args: Any, **kwargs: Any) -> None:
        raise MemoryError("Unable to allocate 1.00 TiB for an array with shape (262144, 1048576)")

    monkeypatch.setattr(builder, "build_model", exhausted)
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    result = runner.invoke(app, ["build", str(spec), "-o", str(tmp_path / "m.keras")])
    assert result.exit_code == 1, result.output
    text = " ".join(result.stderr.split())
    assert "error: out of memory: Unable to allocate 1.00 TiB for an array" in text
    assert "hint: free the memory" in text and "internal error" not in text
    assert not (tmp_path / "m.keras").exists()


@pytest.mark.slow
def test_any_command_on_a_full_disk_under_tensorflows_own_file_is_a_write_error(
    tmp_path, runner, monkeypatch
):
    """TensorFlow raises a full disk under a file it writes itself as ResourceExhaustedError,
    naming the file: every command said "out of memory" with the advice of smaller batches."""
    import tensorflow as tf

    import cnnspec.backends.keras_builder as builder

    cache = tmp_path / "cache_0.data-00000-of-00001"

    def full(*args: Any, **kwargs: Any) -> None:
        said = (
            f"Graph execution error:\n\n{cache}.tempstate42; No space left on device\n\t [[{{{{node x}}}}]]"
        )
        raise tf.errors.ResourceExhaustedError(None, None, said)

    monkeypatch.setattr(builder, "build_model", full)
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    result = runner.invoke(app, ["build", str(spec), "-o", str(tmp_path / "m.keras")])
    assert result.exit_code == 1, result.output
    text = " ".join(result.stderr.split())
    assert f"error: cannot write {cache}: No space left on device (" in text and "free there)" in text
    assert "hint: free some space there or write elsewhere (-o), then run the same command again" in text
    assert "out of memory" not in text and "internal error" not in text
