"""TensorFlow's oneDNN CPU kernels refuse some tensors Keras builds (its softmax: at most 5 axes,
the batch included). A platform's limit, not cnnspec's bug: commands say so with a hint (exit 1),
where they said "internal error … please report it" (exit 3). Slow: TensorFlow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cnnspec.cli.app import app
from tests.conftest import OWN_KERNELS_ENV, start_python

pytestmark = pytest.mark.slow

#: the venv's console script, run as a Python script
CNNSPEC = str(Path(sys.executable).with_name("cnnspec"))
#: A softmax over a rank-5 tensor (6 axes with the batch), trained for one epoch on 256 digits (the
#: data's size plays no part in oneDNN's limit: the whole 1,797 only made the training longer).
SPEC = """\
cnnspec: 1
name: softmax5
input: {shape: [8, 8, 1]}
model:
  - reshape: [2, 2, 2, 2, 4]
  - dense: {units: 4, activation: softmax}
  - flatten
  - dense: {units: 10, activation: softmax}
data: {source: digits, limit: 256}
training: {epochs: 1, batch_size: 64}
"""
#: What TensorFlow 2.21 raises on the first training step (the stack trace elided).
RAISED = (
    "Graph execution error:\n\nDetected at node StatefulPartitionedCall/softmax5_1/dense_1_1/Softmax "
    "defined at (most recent call last):\n<stack traces unavailable>\nInput dims must be <= 5 and "
    ">=1\n\t [[{{node StatefulPartitionedCall/softmax5_1/dense_1_1/Softmax}}]] "
    "[Op:__inference_multi_step_on_iterator_1046]"
)


def test_the_onednn_rank_limit_is_said_plainly_with_its_node():
    import tensorflow as tf

    from cnnspec.training.onednn import kernel_limit

    limit = kernel_limit(tf.errors.AbortedError(None, None, RAISED))
    assert limit is not None
    assert limit.message == (
        "TensorFlow's oneDNN CPU kernel cannot run the model's Softmax op (node "
        "softmax5_1/dense_1_1/Softmax): it takes tensors of at most 5 axes, the batch included, "
        'and Keras gave it more (TensorFlow said: "Input dims must be <= 5")'
    )
    assert limit.hint.startswith("run with TF_ENABLE_ONEDNN_OPTS=0 in the environment")
    assert "at most 4 axes besides the batch" in limit.hint
    # with the model's layers (spec_layers': Keras name → how the spec names it), the layer
    named = {"dense_1": "layer `dense_1` (softmax5.yaml:6:12, model[1].dense)", "dense": "layer `dense`"}
    limit = kernel_limit(tf.errors.AbortedError(None, None, RAISED), named)
    assert limit is not None
    assert limit.message.startswith(
        "TensorFlow's oneDNN CPU kernel cannot run the Softmax op of layer `dense_1` "
        "(softmax5.yaml:6:12, model[1].dense): it takes tensors of at most 5 axes"
    )
    # a node of no layer named: its path, as without them
    limit = kernel_limit(tf.errors.AbortedError(None, None, RAISED), {"flatten_1": "layer `flatten_1`"})
    assert limit is not None and "Softmax op (node softmax5_1/dense_1_1/Softmax)" in limit.message
    # other errors are not this one
    assert kernel_limit(tf.errors.AbortedError(None, None, "Graph execution error: other")) is None
    assert kernel_limit(ValueError("Input dims must be <= 5")) is None


#: What TensorFlow 2.21's own CPU kernel raises on the first training step of a dilated
#: conv2d_transpose (oneDNN off: TF_ENABLE_ONEDNN_OPTS=0, or a CPU TensorFlow leaves it off on).
DILATED = (
    "Graph execution error:\n\nDetected at node dil_1/conv2d_transpose_1_1/conv_transpose defined at "
    "(most recent call last):\n<stack traces unavailable>\nCurrent CPU implementations do not yet "
    "support dilation rates larger than 1.\n\t [[{{node dil_1/conv2d_transpose_1_1/conv_transpose}}]] "
    "[Op:__inference_multi_step_on_iterator_1020]"
)


def test_the_cpu_kernels_dilated_transpose_limit_is_said_with_the_other_kernels_setting():
    import tensorflow as tf

    from cnnspec.training.onednn import kernel_limit

    named = {"conv2d_transpose_1": "layer `conv2d_transpose_1` (dil.yaml:5:23, model[0].conv2d_transpose)"}
    limit = kernel_limit(tf.errors.InvalidArgumentError(None, None, DILATED), named)
    assert limit is not None
    assert limit.message == (
        "TensorFlow's own CPU kernel (oneDNN off) cannot run the conv_transpose op of layer "
        "`conv2d_transpose_1` (dil.yaml:5:23, model[0].conv2d_transpose): it takes no dilation_rate "
        'above 1 in a transposed convolution (TensorFlow said: "Current CPU implementations do not '
        'yet support dilation rates larger than 1")'
    )
    assert limit.hint.startswith("run with TF_ENABLE_ONEDNN_OPTS=1 in the environment")
    # the resume command `train` prints turns oneDNN on, where the rank limit's turns it off
    assert limit.setting == "TF_ENABLE_ONEDNN_OPTS=1"
    assert kernel_limit(tf.errors.AbortedError(None, None, RAISED)).setting == "TF_ENABLE_ONEDNN_OPTS=0"


def cnnspec(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``cnnspec args…`` in a process of its own: a fork of a Python that imported TensorFlow
    already with the variables ``env`` sets that TensorFlow reads at import (tests/script_runner.py:
    the test process's server where they are the test process's, else a server of their own, as
    the ``own_kernels`` tests' TF_ENABLE_ONEDNN_OPTS=0 share)."""
    process = start_python(
        CNNSPEC, *args, cwd=cwd, env=env, env_server=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = process.communicate(timeout=600)
    return subprocess.CompletedProcess(args, process.returncode, out, err)


@pytest.mark.xdist_group("own_kernels")  # (its oneDNN-off training forks the group's server)
def test_train_says_the_kernel_limit_instead_of_an_internal_error(tmp_path, monkeypatch):
    """In a process with oneDNN on (as TensorFlow's x86 builds default); with
    TF_ENABLE_ONEDNN_OPTS=0 the same spec trains."""
    (tmp_path / "softmax5.yaml").write_text(SPEC, encoding="utf-8")
    if os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "1":
        pytest.skip("TF_ENABLE_ONEDNN_OPTS turns oneDNN off in this environment")
    # (the variable left as the test process has it: its forks run with TensorFlow imported)
    env = {**os.environ, "COLUMNS": "400"}
    done = cnnspec(["train", "softmax5.yaml", "-o", "run"], tmp_path, env)
    if done.returncode == 0:
        pytest.skip("this machine's TensorFlow runs the softmax without oneDNN's limit")
    said = " ".join(done.stderr.split())
    assert done.returncode == 1, said
    assert "internal error" not in said and "Traceback" not in said, said
    # the layer as the spec writes it (its id, where, and what), not TensorFlow's node path
    assert (
        "error: TensorFlow's oneDNN CPU kernel cannot run the Softmax op of layer `dense_1` "
        "(softmax5.yaml:6:12, model[1].dense): it takes tensors of at most 5 axes, the batch included"
    ) in said, said
    assert "hint: run with TF_ENABLE_ONEDNN_OPTS=0" in said and "no epoch was finished" in said, said
    # the command it prints goes on in that folder (a new run there is refused: it has files)
    resume = done.stderr.split("resume with:", 1)[1].strip()
    assert resume.startswith("TF_ENABLE_ONEDNN_OPTS=0 cnnspec train ") and "--resume run" in resume, resume
    words = resume.split()[3:]  # (after `TF_ENABLE_ONEDNN_OPTS=0 cnnspec train`)
    again = cnnspec(["train", *words], tmp_path, {**env, **OWN_KERNELS_ENV})  # (TF_ENABLE_ONEDNN_OPTS=0)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "run" / "metrics.json").is_file()
    # the commands that run the trained model name the layer too (export's own Keras check runs
    # it eagerly, where TensorFlow names no node: it runs it again as a graph to find it). They
    # run in this process, which has oneDNN on as the forks do (the train above proved the real
    # command's exit status): each fork imported cnnspec and ended again, for the same message
    # from the same command guard (an unexpected exception there is exit 3, "internal error").
    Image.fromarray(np.zeros((8, 8), dtype="uint8")).save(tmp_path / "g.png")
    monkeypatch.chdir(tmp_path)  # (the relative paths, and the spec's path as the forks said it)
    runner = CliRunner()
    for words in (["evaluate", "run"], ["predict", "run", "g.png"], ["export", "run", "-f", "tflite"]):
        done = runner.invoke(app, words, env={"COLUMNS": "400"})
        said = " ".join(done.stderr.split())
        assert done.exit_code == 1, (words, said, done.exception)
        assert (
            "error: TensorFlow's oneDNN CPU kernel cannot run the Softmax op of layer `dense_1` "
            f"({tmp_path / 'softmax5.yaml'} (resolved in run):"
        ) in said, (words, said)
        assert "model[1].dense): it takes tensors of at most 5 axes" in said, (words, said)
        assert "hint: run with TF_ENABLE_ONEDNN_OPTS=0" in said, (words, said)
    assert not list((tmp_path / "run").glob("*.tflite*")), "export wrote a file"
