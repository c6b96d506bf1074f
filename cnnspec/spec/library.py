"""A block library checked on its own (``cnnspec validate lib.yaml``, an open library in
``cnnspec lsp``): a file of ``blocks:`` (and ``vars:``, ``use:``) with no model to compile.

It is loaded as a spec's ``use:`` loads it (the library schema, the libraries it uses in
turn), then its own blocks get the checks a block of a spec gets where nothing calls it
(:mod:`cnnspec.spec.dormant`): each block's declaration (a reserved name, a parameter name no
expression can read, a default of the wrong type, a parameter nothing in the block reads), and
in its layers the kinds, parameter and argument names, the values written out in full and the
block arguments left out. What needs a caller's values (``${…}``,
shapes) is checked where a spec calls the block.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cnnspec.errors import Diagnostic, Diagnostics, SpecError, UsageError
from cnnspec.spec.compose import Reader, load_library, resolve_path
from cnnspec.spec.dormant import check_dormant
from cnnspec.spec.hiding import hidden_block_warnings
from cnnspec.spec.loader import SourceDoc, display_name, load_file, load_text
from cnnspec.spec.resolve import Resolver
from cnnspec.spec.zoo import is_zoo_ref, resolve_ref

#: The top-level keys that make a file a spec rather than a library: a spec may take its model
#: from the base it extends.
_SPEC_KEYS = frozenset({"model", "extends"})


def is_library_keys(keys: Iterable[object]) -> bool:
    """Whether a file with these top-level keys is a block library: ``blocks`` and neither
    ``model`` nor ``extends`` (``cnnspec schema --library``'s file)."""
    found = set(keys)
    return "blocks" in found and not found & _SPEC_KEYS


def library_file(path: Path, reader: Reader | None = None) -> Path | None:
    """The block library file ``path`` names for a check on its own: a zoo library
    (``zoo:blocks/resnet``: the packaged file) or a local file that :func:`is_library_file`
    takes for one (``reader``: its text, if not the disk's); ``None`` for a spec, a zoo model
    or an unknown zoo name (whose check as a spec says why)."""
    text = str(path)
    if is_zoo_ref(text):
        try:
            file, variant = resolve_ref(text)
        except SpecError:
            return None
        return file if variant is None else None
    return path if is_library_file(path, reader) else None


def is_library_file(path: Path, reader: Reader | None = None) -> bool:
    """Whether ``path`` is a readable YAML file whose top-level keys make it a block library
    (:func:`is_library_keys`); ``False`` for anything else, whose check as a spec says why.
    ``reader`` may give its text instead of the disk (``validate --fix``: as fixed so far)."""
    try:
        resolved = resolve_path(path) if reader is not None else None
        text = reader(resolved) if reader is not None and resolved is not None else None
        if text is None and not path.is_file():
            return False
        data = load_text(text, display_name(path)).data if text is not None else load_file(path).data
    except (SpecError, UsageError, OSError):
        return False
    return isinstance(data, dict) and is_library_keys(data)


@dataclass
class CheckedLibrary:
    """What checking a block library gave."""

    #: The located library, with the blocks of the libraries it uses.
    doc: SourceDoc
    #: The names of the blocks its own file defines, in order.
    blocks: list[str]
    warnings: list[Diagnostic]


def check_library(path: Path, *, allow_outside: bool = False, reader: Reader | None = None) -> CheckedLibrary:
    """Load the block library ``path`` (``reader``: the editor's text of the files it reads)
    and check its own blocks (see the module). Raises :class:`~cnnspec.errors.SpecError` with
    every error."""
    doc = load_library(path, allow_outside=allow_outside, reader=reader)
    diags = Diagnostics()
    # (a block of its own that hides one a library it uses calls: each caller counts, for others)
    for warning in hidden_block_warnings(doc, library=True):
        diags.add(warning)
    resolver = Resolver(doc, diags, allow_outside=allow_outside)
    resolver.check_blocks()
    blocks = doc.data.get("blocks")
    own: dict[str, object] = {}
    for name, block in blocks.items() if isinstance(blocks, dict) else ():
        loc = doc.key_loc(("blocks", name))
        if isinstance(name, str) and (loc is None or loc.file == doc.file):
            own[name] = block  # (a block of a library it uses is checked as that library)
    roots = [
        (b.get("layers") if isinstance(b, dict) else None, ("blocks", n, "layers")) for n, b in own.items()
    ]
    check_dormant(resolver, roots, library=True)  # (a spec's `defaults` may give a layer's parameters)
    diags.raise_if_errors()
    resolver.warn_unread_params()
    return CheckedLibrary(doc, list(own), list(diags.warnings))
