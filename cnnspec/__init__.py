"""cnnspec — a declarative compiler for convolutional neural networks.

The package imports no TensorFlow: ``build_model`` and training import it when called.
"""

from __future__ import annotations

from typing import Any

from cnnspec.version import __version__ as __version__

__all__ = [
    "CompiledSpec",
    "SpecError",
    "UsageError",
    "WriteError",
    "build_augmentation",
    "build_model",
    "compile_spec",
    "compile_text",
    "generate_code",
    "load",
    "load_keras_application_weights",
    "resolve",
    "validate",
]

#: The exceptions a caller handles: a spec's located errors, a mistake in the arguments
#: (``--set`` text, a missing option value), a file that could not be written.
_ERRORS = ("SpecError", "UsageError", "WriteError")


def __getattr__(name: str) -> Any:
    # Lazy re-exports keep `import cnnspec` cheap.
    if name in _ERRORS:
        from cnnspec import errors

        return getattr(errors, name)
    if name in __all__:
        from cnnspec import api

        return getattr(api, name)
    raise AttributeError(f"module 'cnnspec' has no attribute {name!r}")
