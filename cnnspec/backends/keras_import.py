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
    if "tensorflow" not in sys.modules and not os.environ.get("CNNSPEC_TF_LOGS"):
        with native_stderr_silenced():
            import tensorflow  # noqa: F401
        # TensorFlow's Python warnings are about its own tracing (a model's predict function
        # traced again for each model of an ensemble: "triggered tf.function retracing ...
        # define your @tf.function outside of the loop"), advice to code the user does not own
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
    import keras

    return keras


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
