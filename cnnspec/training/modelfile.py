"""The one safe loader of model files: every command that reads a ``.keras`` file goes through
:func:`load_model` (evaluate, predict, visualize, report, export; import and weight loading next).

Models are loaded in Keras safe mode only. What is refused, always with the same
:class:`~cnnspec.errors.UsageError` and before Keras sees the file where the bytes already tell:
legacy HDF5 files (``.h5``, or HDF5 bytes under another name: safe mode can't check them), files
that are not ``.keras`` zip archives or have no ``config.json``, and models holding a ``Lambda``
layer (it stores Python bytecode). A model that Keras itself can't rebuild (an unregistered
class, a damaged archive) is a ``UsageError`` with Keras' first line, never a traceback.

It sits in the training layer, below reporting and export, because a resumed run and a
checkpoint load through it as well.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from cnnspec.errors import UsageError
from cnnspec.fileio import ZIP_MAGIC
from cnnspec.spec.weights import HDF5_MAGIC


def check_model_file(path: str | Path) -> None:
    """Refuse what is not a native Keras archive, before Keras sees it."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"expected a .keras model file; {path} is a folder")
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    legacy = path.suffix.lower() in (".h5", ".hdf5") or head.startswith(HDF5_MAGIC)
    if legacy and head.startswith(HDF5_MAGIC):
        from cnnspec.spec.weights import h5_layout

        if h5_layout(path) == "keras3":  # (model.save_weights, renamed: no legacy model)
            raise UsageError(
                f"expected a Keras model (.keras); {path} is a Keras 3 weights file "
                "(model.save_weights), which holds no model",
                "pass the model's .keras file (model.save); a weights file is a weights source, "
                "under a name ending in .weights.h5",
            )
    if legacy:
        raise UsageError(
            f"expected a native Keras model (.keras); {path} is a legacy HDF5 (.h5) file",
            "cnnspec loads models only in Keras safe mode, which HDF5 files do not support; load it "
            "in Keras yourself if you trust it and save it again with model.save('model.keras')",
        )
    if path.suffix.lower() != ".keras":
        raise UsageError(
            f"expected a Keras model file ending in .keras; received {path}",
            "pass a run folder or the model.keras inside it",
        )
    if not head.startswith(ZIP_MAGIC) or not zipfile.is_zipfile(path):
        raise UsageError(
            f"expected a Keras model (a .keras zip archive); {path} is not one (corrupt or another format)"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise UsageError(f"expected a readable .keras archive; {path}: {exc}") from None
    if "config.json" not in names:
        raise UsageError(f"expected a Keras model archive with config.json; {path} has none")


def load_model(path: str | Path, *, compile: bool = False, one_input: bool = True) -> Any:
    """Load a ``.keras`` model in safe mode; every refusal and failure is a ``UsageError``.

    ``compile``: also rebuild the optimizer, loss and metrics (cnnspec's registered schedules
    included). ``one_input``: refuse models without exactly one input (the image commands need
    one; export takes any)."""
    path = Path(path)
    check_model_file(path)
    from cnnspec.training.builders import warmup_class
    from cnnspec.training.runtime import import_keras

    keras = import_keras()
    warmup_class()  # cnnspec's registered learning-rate schedule, for optimizers that use it
    try:
        model = keras.saving.load_model(str(path), safe_mode=True, compile=compile)
    except Exception as exc:  # Keras raises ValueError, TypeError, OSError, zip errors …
        text = str(exc)
        if "Lambda" in text:
            raise UsageError(
                f"refusing to load {path}: it contains a Lambda layer, which stores Python code",
                "cnnspec loads models only in Keras safe mode; replace the Lambda by a registered "
                "layer (cnnspec specs never produce one)",
            ) from None
        first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        first = first.split(". ")[0][:300]  # Keras adds paragraphs of advice and the config
        raise UsageError(
            f"cannot load the Keras model {path}: {first}",
            "the file may be corrupt, or need custom layers that are not registered",
        ) from None
    lambdas = [layer.name for layer in all_layers(model) if type(layer).__name__ == "Lambda"]
    if lambdas:
        raise UsageError(f"refusing the model {path}: Lambda layer(s) {', '.join(lambdas)}")
    if one_input and len(model.inputs) != 1:
        raise UsageError(f"expected a model with one image input; {path} has {len(model.inputs)}")
    return model


def save_model(model: Any, path: str | Path) -> None:
    """``model.save(path)``, loadable by plain Keras (``keras.saving.load_model``) without
    cnnspec: an optimizer whose learning rate warms up (cnnspec's ``LinearWarmup``, a class
    Keras reads back only once it is registered) is recorded with the rate it has reached, as
    a constant schedule of Keras' own (a schedule, not a number: a number would give the loaded
    optimizer a learning-rate variable the saved one has not, and Keras would then skip
    restoring its moments). Only the saved compile configuration changes (the weights and the
    optimizer's variables are saved as they are): cnnspec resumes a run from its own snapshots
    and reads model.keras' loss, never its optimizer, and ``resolved.yaml`` keeps the schedule."""
    from cnnspec.training.state import keep_skipsets

    keep_skipsets()  # (else Keras 3.15 lists again what to skip for every object the save walks)
    optimizer = getattr(model, "optimizer", None)
    # mixed_float16 wraps it in a LossScaleOptimizer, which saves the one it wraps
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    schedule = getattr(optimizer, "_learning_rate", None)  # (what Keras serializes as learning_rate)
    from cnnspec.training.builders import warmup_class

    if not isinstance(schedule, warmup_class()):
        model.save(str(path))
        return
    import numpy as np

    from cnnspec.training.runtime import import_keras

    schedules = import_keras().optimizers.schedules
    rate = float(np.asarray(optimizer.learning_rate))  # the schedule at the optimizer's step
    constant = schedules.serialize(schedules.PiecewiseConstantDecay([0], [rate, rate]))
    recorded = optimizer.get_config

    def config() -> dict[str, Any]:
        return {**recorded(), "learning_rate": constant}

    optimizer.get_config = config  # this save's serialization only
    try:
        model.save(str(path))
    finally:
        del optimizer.get_config


def all_layers(model: Any) -> list[Any]:
    """Every layer of ``model``, nested models' layers included, in order."""
    out = []
    for layer in getattr(model, "layers", []):
        out.append(layer)
        if hasattr(layer, "layers"):
            out += all_layers(layer)
    return out
