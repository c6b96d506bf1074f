"""The ids a spec names its model outputs by, in ``training.outputs.ID`` and
``data.source.shapes.target.ID``.

``outputs:`` lists each output by the id it is written with: a layer's id (``cls_p``), a block
call's id (``th``: the call's output, the first of the block's ``outputs:``), or a block call's
named output (``th.a``). The model output each one resolves to is named by its layer (``th_b``,
``th_a``: the names of the Keras outputs, of ``metrics.json``'s figures and of an npz file's
``y_train_NAME`` arrays). The keyed sections take either: the id as ``outputs:`` writes it, or
the output's own name.

TensorFlow-free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cnnspec.analysis.compiled import CompiledSpec


def output_ids(compiled: CompiledSpec) -> dict[str, str]:
    """Every id that names a model output → that output's name: each entry of ``outputs:`` as
    written (in its order; an expression, ``${o}``, by the name it gave), then each output's own
    name. Where an entry of ``outputs:`` did not resolve (its error is reported), only the
    names are known."""
    outputs = tuple(compiled.ir.outputs)
    written: Any = compiled.doc.data.get("outputs")
    written = written if isinstance(written, list) else [written] if written is not None else []
    ids: dict[str, str] = {}
    if len(written) == len(outputs):
        for ref, name in zip(written, outputs, strict=True):
            ids[ref if isinstance(ref, str) and "${" not in ref else name] = name
    for name in outputs:
        ids.setdefault(name, name)  # (a written id that is another output's name keeps its meaning)
    return ids


def listed_ids(compiled: CompiledSpec) -> list[str]:
    """The ids of the outputs as ``outputs:`` lists them (their names where it did not
    resolve), for a hint."""
    ids = output_ids(compiled)
    return list(ids)[: len(compiled.ir.outputs)]


def key_of(compiled: CompiledSpec, mapping: dict[Any, Any], name: str) -> Any | None:
    """The key of ``mapping`` (keyed by output ids) that names the output ``name``: the id
    ``outputs:`` writes it with, else its own name; ``None`` where none does."""
    ids = output_ids(compiled)
    return next((key for key in mapping if isinstance(key, str) and ids.get(key) == name), None)
