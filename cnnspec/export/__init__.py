"""``cnnspec export``: a trained model → SavedModel, TFLite or ONNX, each checked against Keras.

- :mod:`cnnspec.export.exporter` — writing and verifying exports (and their records);
- :mod:`cnnspec.export.runtimes` — running a verified export without TensorFlow (ONNX Runtime,
  LiteRT), or the model in Keras, for ``predict``/``evaluate --runtime``;
- :mod:`cnnspec.export.benchmark` — ``cnnspec benchmark``, each runtime timed in its own
  process (:mod:`cnnspec.export.bench_worker`).

Importing this package does not import TensorFlow; :func:`export_model` does.
"""

from __future__ import annotations

from cnnspec.export.exporter import (
    FORMATS,
    QUANTIZATIONS,
    ExportFailed,
    ExportMismatch,
    ExportResult,
    export_model,
)
from cnnspec.export.targets import default_output, resolve_target
from cnnspec.export.verification import FLOAT_TOLERANCE

__all__ = [
    "FLOAT_TOLERANCE",
    "FORMATS",
    "QUANTIZATIONS",
    "ExportFailed",
    "ExportMismatch",
    "ExportResult",
    "default_output",
    "export_model",
    "resolve_target",
]
