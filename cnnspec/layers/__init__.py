"""Layer kinds: the registry and one module per family."""

from cnnspec.layers.registry import REGISTRY, Counts, KerasCall, LayerKind, ShapeError, get_kind

__all__ = ["REGISTRY", "Counts", "KerasCall", "LayerKind", "ShapeError", "get_kind"]
