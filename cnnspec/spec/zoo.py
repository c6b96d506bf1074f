"""``zoo:`` references and family variants.

A family spec (``cnnspec/zoo/resnet.yaml``, or any spec of the user's) is an ordinary spec with
two more top-level keys: ``family`` (a display name) and ``variants``, a table from variant name
to ``{keras_name, vars}``. Selecting a variant applies its vars over the file's ``vars:``, each
value keeping the location where the variants table wrote it; the first variant is the default.

References:

- ``zoo:NAME``: the family file of the zoo that lists variant ``NAME``, with that variant;
- ``zoo:blocks/NAME``: the block library ``cnnspec/zoo/blocks/NAME.yaml``;
- ``path/to/family.yaml#NAME``: variant ``NAME`` of a local family file.

Unknown names are spec errors with did-you-mean. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnspec.errors import Loc, SpecError, SpecPath, did_you_mean, format_path
from cnnspec.resources import zoo_dir
from cnnspec.spec.loader import SourceDoc, load_file
from cnnspec.spec.scope import IDENTIFIER

PREFIX = "zoo:"
BLOCKS = "blocks/"


@dataclass(frozen=True)
class Variant:
    """One row of a family's ``variants`` table, as the zoo lists it."""

    name: str
    family: str
    keras_name: str
    file: Path


def is_zoo_ref(ref: object) -> bool:
    """Whether ``ref`` (a spec path as given) names something in the zoo."""
    return isinstance(ref, str) and ref.startswith(PREFIX)


def family_files() -> list[Path]:
    """Every family spec of the zoo, in name order."""
    return sorted(zoo_dir().glob("*.yaml"))


@functools.cache
def variants() -> dict[str, Variant]:
    """Every variant of the zoo by name, in file order then table order (cached per process)."""
    found: dict[str, Variant] = {}
    for file in family_files():
        data = load_file(file).data
        table = data.get("variants")
        if not isinstance(table, dict):
            continue
        family = str(data.get("family", file.stem))
        for name, row in table.items():
            keras_name = row.get("keras_name", "") if isinstance(row, dict) else ""
            found.setdefault(str(name), Variant(str(name), family, str(keras_name), file))
    return found


@functools.cache
def block_libraries() -> list[str]:
    """The zoo's block library names, sorted (listed once per process, as :func:`variants`)."""
    return sorted(p.stem for p in (zoo_dir() / "blocks").glob("*.yaml"))


def resolve_ref(ref: str, loc: Loc | None = None, path: str = "") -> tuple[Path, str | None]:
    """The file a ``zoo:`` reference names and the variant it selects (``None`` for a library).

    An unknown name raises a located :class:`SpecError` with did-you-mean."""
    name = ref[len(PREFIX) :]
    if name.startswith(BLOCKS):
        library = name[len(BLOCKS) :].removesuffix(".yaml")
        libraries = block_libraries()
        if library not in libraries:
            raise SpecError.single(
                f"no block library {ref!r} in the zoo",
                loc,
                path,
                code="zoo",
                hint=_hint(library, libraries, "zoo:blocks/"),
            )
        return zoo_dir() / "blocks" / f"{library}.yaml", None
    table = variants()
    if name not in table:
        raise SpecError.single(
            f"no model {ref!r} in the zoo",
            loc,
            path,
            code="zoo",
            hint=_hint(name, list(table), PREFIX, "`cnnspec zoo` lists them"),
        )
    return table[name].file, name


def _hint(name: str, choices: list[str], prefix: str, fallback: str | None = None) -> str:
    close = did_you_mean(name, choices)
    if close is not None:
        return close.replace("`", f"`{prefix}", 1)
    return fallback or "the zoo has " + ", ".join(prefix + c for c in choices)


def split_variant(ref: str) -> tuple[str, str | None]:
    """``family.yaml#name`` → (``family.yaml``, ``name``); anything else → (ref, ``None``)."""
    base, sep, variant = ref.rpartition("#")
    if not sep or not base or not variant or "/" in variant:
        return ref, None
    return base, variant


def apply_variant(doc: SourceDoc, variant: str | None, loc: Loc | None = None, path: str = "") -> str | None:
    """Select ``variant`` (``None``: the first) of a family document, in place: its vars go over
    the file's ``vars:`` (keeping the variants table's locations) and it names the model; the
    variant selected (``None``: no table).

    A document without a ``variants`` table is left alone unless a variant was asked for. A
    malformed table is left for the schema to report."""
    table = doc.data.get("variants")
    if table is None:
        if variant is not None:
            raise SpecError.single(
                f"cannot select variant {variant!r}: {doc.file} has no `variants` table",
                loc,
                path,
                code="zoo",
            )
        return None
    if not isinstance(table, dict) or not table:
        return None
    if variant is None:
        variant = str(next(iter(table)))
    elif variant not in table:
        # asked for on the command line (`fam.yaml#v2`, no place in a file): at the table
        where = (loc, path) if loc is not None else (doc.key_loc(("variants",)), "variants")
        raise SpecError.single(
            f"{doc.file} has no variant {variant!r}",
            *where,
            code="zoo",
            hint=did_you_mean(variant, table) or "its variants: " + ", ".join(map(str, table)),
        )
    row = table[variant]
    overrides: Any = row.get("vars") if isinstance(row, dict) else None
    if not isinstance(overrides, dict):  # (as written again by written_data: already applied)
        return variant
    own = doc.data.get("vars")
    if not isinstance(own, dict):
        return None  # the schema reports a `vars` that is not a mapping
    unknown = [name for name in overrides if name not in own]
    if unknown:  # as --set refuses it: read nowhere, it was only warned of as never read
        where = ("variants", variant, "vars", unknown[0])
        raise SpecError.single(
            f"unknown var {unknown[0]!r}: a variant can only change a var the spec declares",
            doc.key_loc(where) or loc,
            format_path(where),
            code="unknown-var",
            hint=did_you_mean(str(unknown[0]), own) or "declare it under `vars:` in the spec",
        )
    own.update(overrides)
    # Each overridden var is now located where the variants table wrote it (one pass per table).
    for table_src in (doc.locs, doc.key_locs):
        stale: list[SpecPath] = []
        moved: dict[SpecPath, Loc] = {}
        for p, where in table_src.items():  # one pass: the stale `vars` and the variant's own
            if len(p) < 2:
                continue
            if p[0] == "vars":
                if p[1] in overrides:
                    stale.append(p)
            elif (
                p[0] == "variants" and len(p) > 3 and p[1] == variant and p[2] == "vars" and p[3] in overrides
            ):
                moved[("vars", *p[3:])] = where
        for p in stale:
            del table_src[p]
        table_src.update(moved)
    # The variant names the model, unless either name is no identifier: the schema then reports
    # the one written wrong where it is written (a variant `b-1` at its key, not as the `name:`
    # line's; a family's own `name: "bad name!"`, which the variant's would replace unchecked).
    own_name = doc.data.get("name")
    if IDENTIFIER.fullmatch(variant) and (
        own_name is None or (isinstance(own_name, str) and IDENTIFIER.fullmatch(own_name))
    ):
        doc.data["name"] = variant
    return variant


def written_data(data: dict[str, Any], variant: str | None) -> dict[str, Any]:
    """``data`` of a composed document as a spec file writes it again (a run's resolved.yaml, a
    search's best.yaml and trial specs): a family's variants table reduced to the ``variant``
    applied, without its vars, which ``vars:`` holds already with ``--set`` and a trial's values
    over them. Loaded again, the file selects that variant and changes nothing; written whole,
    it applied the first variant's vars over those trained (``fam.yaml#large`` came back as
    ``small``, a spec extending ``zoo:resnet101`` as ResNet50)."""
    table = data.get("variants")
    if variant is None or not isinstance(table, dict) or variant not in table:
        return data
    row = table[variant]
    kept = {k: v for k, v in row.items() if k != "vars"} if isinstance(row, dict) else {}
    return {**data, "variants": {variant: kept}}
