"""Importing Keras quietly: TensorFlow's native start-up lines never reach the user's terminal.

Every path that builds, trains, loads or exports a model imports Keras through
:func:`import_keras`, so a command prints the same clean lines whichever step first needs
TensorFlow (``cnnspec train --weights`` builds the model to match the weights before training
starts: it once let ``failed call to cuInit`` through).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any


def import_keras() -> Any:
    """Import Keras (and TensorFlow) with TensorFlow's C++ start-up chatter turned down.

    TensorFlow's native logger writes a few lines to file descriptor 2 while it loads, before
    ``TF_CPP_MIN_LOG_LEVEL`` applies; they are dropped unless ``CNNSPEC_TF_LOGS=1``. Errors
    still surface as Python exceptions after the import.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    deep_graphs()
    if "tensorflow" not in sys.modules and not os.environ.get("CNNSPEC_TF_LOGS"):
        with native_stderr_silenced():
            import tensorflow  # noqa: F401
        # TensorFlow's Python warnings are about its own tracing (a model's predict function
        # traced again for each model of an ensemble: "triggered tf.function retracing ...
        # define your @tf.function outside of the loop"), advice to code the user does not own
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
    import keras

    return keras


#: Python frames Keras takes per layer of a chain, with room to spare: ``keras.Model(...)`` and
#: loading a model walk the graph recursively (``map_graph``), one level or so per layer (a chain
#: of 1,000 layers needs a limit between 1,000 and 1,500, of 2,000 one below 3,200).
FRAMES_PER_LAYER = 2


def deep_graphs() -> None:
    """Python's recursion limit raised (never lowered) so that Keras can build, save, load and
    cut a model as deep as a spec may be (:data:`cnnspec.spec.limits.MAX_NODES` layers in one
    chain): at Python's 1,000 a valid chain of about 1,000 layers that validate accepted was
    "internal error (RecursionError)" in build and train. Measured with a chain of 20,000
    layers at this limit: built, saved, loaded, fitted and evaluated; and json, PyYAML,
    deepcopy and repr of 40,000-deep nesting still end in RecursionError, not a crash."""
    from cnnspec.spec.limits import MAX_NODES

    wanted = FRAMES_PER_LAYER * MAX_NODES + 2_000
    if sys.getrecursionlimit() < wanted:
        sys.setrecursionlimit(wanted)


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for the block: native libraries (TensorFlow, LiteRT,
    converters) write there directly, past Python's ``sys.stderr``."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
