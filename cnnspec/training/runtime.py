"""TensorFlow set-up for a run: quiet import, threads, seeds, determinism, mixed precision.

Imported lazily by the trainer; importing this module does not import TensorFlow.
"""

from __future__ import annotations

import contextlib
import random
import secrets
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from cnnspec.analysis.settings_types import TrainConfig

if TYPE_CHECKING:
    from cnnspec.analysis.compiled import CompiledSpec
from cnnspec.backends.keras_import import import_keras, native_stderr_silenced

__all__ = ["import_keras", "native_stderr_silenced"]  # where training and its users import them from


def choose_seed(config: TrainConfig) -> int:
    """The spec's seed, or a fresh random one (recorded in lock.json so the run can be redone)."""
    return config.seed if config.seed is not None else secrets.randbelow(2**31)


def gpu_names() -> list[str]:
    import tensorflow as tf

    return [d.name for d in tf.config.list_physical_devices("GPU")]


def refuse_cpu_gaps(compiled: CompiledSpec) -> None:
    """On a machine without a GPU, refuse a model holding a layer TensorFlow's own CPU kernels
    cannot run (the registry's ``cpu_gap``; validate warns of it) where this machine's kernels
    fail on it too (:func:`cpu_runs`: oneDNN's run a dilated transposed convolution, and
    TensorFlow turns oneDNN on by default on some CPUs only): it failed in its first batch,
    after the data was loaded, as an internal error. A located error at the layer."""
    from cnnspec.errors import SpecError
    from cnnspec.layers.registry import REGISTRY

    for node in compiled.ir.nodes:
        gap = REGISTRY[node.kind].cpu_refusal(node.params)
        if gap is not None and not gpu_names() and not cpu_runs(node, compiled):
            phrase, hint = gap
            raise SpecError.single(
                f"{phrase}; this machine has no GPU, and its oneDNN is off",
                node.loc,
                node.path,
                code="cpu-kernel",
                hint=hint,
            )


def cpu_runs(node: Any, compiled: CompiledSpec) -> bool:
    """Whether this machine's CPU kernels run the layer of ``node``: the layer alone, forward
    and back, on one image of zeros of its input's shape. The gap is TensorFlow's own kernel's;
    where oneDNN is on (``TF_ENABLE_ONEDNN_OPTS=1``, or by default on a CPU with AVX-512) its
    kernel runs the layer, and train refused a model that trained (a milliseconds' probe)."""
    import tensorflow as tf

    from cnnspec.backends.keras_builder import make_layer

    shapes = [compiled.ir.shape_of(name) for name in node.inputs]
    if len(shapes) != 1 or shapes[0] is None or None in shapes[0]:
        return False  # (no fixed input to try: refused as before)
    x = tf.zeros((1, *shapes[0]))
    try:
        with tf.device("/CPU:0"), tf.GradientTape() as tape:
            tape.watch(x)
            y = make_layer(node)(x)
        tape.gradient(y, x)
    except Exception:  # the kernel's refusal (InvalidArgumentError); any failure: refused
        return False
    return True


@contextlib.contextmanager
def configured(config: TrainConfig, seed: int, notes: list[str]) -> Iterator[str]:
    """Apply the runtime settings for the duration of a run; yields the dtype policy name.

    Thread pools can only be sized before TensorFlow runs its first op; when that already
    happened (a second run in one process) the setting is skipped with a note.
    """
    keras = import_keras()
    import tensorflow as tf

    threading = tf.config.threading
    for setter, getter, value, what in (
        (threading.set_intra_op_parallelism_threads, threading.get_intra_op_parallelism_threads,
         config.intra_op_threads, "intra_op"),
        (threading.set_inter_op_parallelism_threads, threading.get_inter_op_parallelism_threads,
         config.inter_op_threads, "inter_op"),
    ):  # fmt: skip
        if value and getter() != value:
            try:
                setter(value)
            except RuntimeError:
                notes.append(f"runtime.threads.{what} not applied: TensorFlow was already initialised")
    random.seed(seed)
    keras.utils.set_random_seed(seed)  # Python, NumPy and TensorFlow
    # op determinism is process-wide: put back what was there, or a later run in this process
    # (a search trial, the Python API, a test) would run deterministic and without XLA too
    from tensorflow.python.framework.config import disable_op_determinism, is_op_determinism_enabled

    was_deterministic = is_op_determinism_enabled()
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    previous = keras.config.dtype_policy().name
    policy = "float32"
    if config.mixed_precision:
        policy = "mixed_float16" if gpu_names() else "mixed_bfloat16"
        keras.config.set_dtype_policy(policy)
    try:
        yield policy
    finally:
        if config.mixed_precision:
            keras.config.set_dtype_policy(previous)
        if config.deterministic and not was_deterministic:
            disable_op_determinism()
