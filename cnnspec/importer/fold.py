"""Repeated structure → blocks with parameters, consecutive calls → ``repeat``."""

from __future__ import annotations

from cnnspec.importer.items import Block, Item


def fold(items: list[Item]) -> list[Block]:
    """Fold ``items`` in place; return the blocks found."""
    return []
