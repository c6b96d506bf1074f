"""Layer kinds: the registry and one module per family."""

from cnnspec.layers.registry import (
    REGISTRY,
    Counts,
    KerasCall,
    LayerKind,
    ShapeError,
    get_kind,
    kind_of_keras_class,
)

__all__ = ["REGISTRY", "Counts", "KerasCall", "LayerKind", "ShapeError", "get_kind", "kind_of_keras_class"]
