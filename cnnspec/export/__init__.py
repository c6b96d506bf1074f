"""``cnnspec export``: a trained model → SavedModel, TFLite or ONNX, each checked against Keras.

Importing this package does not import TensorFlow; :func:`export_model` does.
"""

from __future__ import annotations

from cnnspec.export.exporter import (
    FLOAT_TOLERANCE,
    FORMATS,
    QUANTIZATIONS,
    ExportFailed,
    ExportMismatch,
    ExportResult,
    default_output,
    export_model,
    resolve_target,
)

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
