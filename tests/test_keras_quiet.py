"""Keras imported through cnnspec (backends/keras_import.py) prints none of TensorFlow's chatter.

A real process, as a user's terminal sees it, with ``TF_CPP_MIN_LOG_LEVEL`` unset (the tests set
it for themselves): one cold TensorFlow import serves both proofs (about 5 s each as two):

- ``cnnspec import keras:NAME`` loads TensorFlow through the one quiet import (build, train and
  export do): its C++ start-up lines (``I0000 … oneDNN``, ``E0000 … cuInit``) stay out of the
  user's terminal. A name keras.applications lacks is refused after the import. The command runs
  first, through the console script's ``main``, so that those start-up lines are its own.
- ``evaluate --ensemble`` predicted with each model in turn, and TensorFlow warned on stderr that
  the predict function was "retraced", with advice to move a ``@tf.function`` out of a loop, code
  the user does not own.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

CHILD = """
import sys

from cnnspec.cli.app import main

out = sys.argv[1]
sys.argv = ["cnnspec", "import", "keras:NoSuchNet", "-o", out]
try:
    main()
except SystemExit as done:
    print(f"import exit {done.code}", flush=True)
print("--- predicting", file=sys.stderr, flush=True)

import numpy as np

from cnnspec.backends.keras_import import import_keras

keras = import_keras()
batch = np.zeros((2, 4), dtype="float32")
for units in range(1, 8):  # a new model each time, as an ensemble's members are
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units)])
    model.predict(batch, verbose=0)
print("done")
"""


def native(stderr: str) -> list[str]:
    """TensorFlow's C++ log lines in ``stderr`` (``I0000 …``, ``E0000 …``, ``W0000 …``)."""
    return [line for line in stderr.splitlines() if line[:5] in ("I0000", "E0000", "W0000")]


@pytest.fixture(scope="module")
def child(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], str, str]:
    """The child's stdout lines, and its stderr before and after the import command ended."""
    out = tmp_path_factory.mktemp("keras_quiet") / "x.yaml"
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "CNNSPEC_TF_LOGS")}
    run = subprocess.run(
        [sys.executable, "-c", CHILD, str(out)], capture_output=True, text=True, timeout=300, env=env
    )
    assert run.returncode == 0, run.stderr
    assert not out.exists()
    imported, _, predicted = run.stderr.partition("--- predicting\n")
    return run.stdout.splitlines(), imported, predicted


def test_keras_application_import_keeps_tensorflows_start_up_log_quiet(child) -> None:
    lines, imported, _ = child
    assert "import exit 1" in lines, imported
    assert "keras.applications has no model 'NoSuchNet'" in imported
    assert native(imported) == [], imported


def test_predicting_with_several_models_prints_no_tensorflow_warnings(child) -> None:
    lines, _, predicted = child
    assert lines[-1] == "done"
    assert "retracing" not in predicted and "WARNING:tensorflow" not in predicted, predicted
    assert native(predicted) == [], predicted
