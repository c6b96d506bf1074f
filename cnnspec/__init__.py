"""cnnspec — a declarative compiler for convolutional neural networks.

The package imports no TensorFlow: ``build_model`` and training import it when called.
"""

from __future__ import annotations

from typing import Any

from cnnspec.version import __version__ as __version__

__all__ = [
    "CompiledSpec",
    "SpecError",
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


def __getattr__(name: str) -> Any:
    # Lazy re-exports keep `import cnnspec` cheap.
    if name == "SpecError":
        from cnnspec.errors import SpecError

        return SpecError
    if name in __all__:
        from cnnspec import api

        return getattr(api, name)
    raise AttributeError(f"module 'cnnspec' has no attribute {name!r}")
