"""Warnings on what fine-tuning phases freeze and how fast they train their layers: a phase that
trains nothing, a ``freeze`` or ``unfreeze`` pattern whose layers have no weights or that the
same section undoes, and a ``learning_rate_scale`` factor that changes nothing. Each is located
at what the user wrote; none stops training, since each setting is valid on its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cnnspec.analysis.settings_reader import SectionReader
from cnnspec.analysis.settings_types import PhaseConfig
from cnnspec.errors import SpecPath, format_path

if TYPE_CHECKING:
    from cnnspec.analysis import freezing
    from cnnspec.ir import ModelIR


def trains_nothing(ir: ModelIR, phase: PhaseConfig) -> bool:
    """Whether ``phase`` freezes every layer of ``ir`` with trainable weights (a model with none
    at all is not said to: no freezing made it so)."""
    trainable = {node.name for node in ir.nodes if node.counts.trainable}
    return bool(trainable) and trainable <= set(phase.frozen)


def warn_frozen_phases(
    reader: SectionReader, ir: ModelIR, phases: list[tuple[PhaseConfig, SpecPath]]
) -> None:
    """A located warning for a phase (or the one training) that freezes every layer with
    trainable weights: its epochs change nothing (Keras said only "The model does not have
    any trainable weights", in its own words)."""
    for index, (phase, path) in enumerate(phases):
        if trains_nothing(ir, phase) and reader.value(path, None) is not None:
            phased = path[1] == "phases"
            reader.warning(
                f"{f'phase {index + 1}' if phased else 'the training'} trains nothing: every layer "
                "with trainable weights is frozen",
                path,
                "unfreeze the layers it should train (unfreeze: [head])"
                + (", or leave the phase out" if phased else ""),
                code="unused-setting",
                key=not phased,
            )


def warn_idle_scales(
    reader: SectionReader,
    patterns: freezing.Patterns,
    ir: ModelIR,
    phases: list[tuple[PhaseConfig, SpecPath]],
) -> None:
    """A located warning for a ``learning_rate_scale`` that changes nothing, or less than it
    says: a pattern whose layers have no weights, whose every layer a later pattern sets, or
    whose layers (those it sets) are frozen in every phase it is in force (a frozen layer takes
    no steps); a mapping never in force (each phase writes its own); factors under Adafactor's
    cap (:func:`warn_capped_scales`)."""
    from cnnspec.analysis import freezing
    from cnnspec.spec.sections import RATE_SCALE

    warn_capped_scales(reader, phases)
    weighted = set(freezing.ordered(ir, patterns.layers))
    trained: dict[SpecPath, set[str]] = {}  # each mapping in force: the layers some phase trains
    for phase, source in phases:
        trained.setdefault(source, set()).update(weighted - set(phase.frozen))
    for source in dict.fromkeys((("training", RATE_SCALE), *trained)):
        written = reader.value(source, None)
        if not isinstance(written, dict) or not written:
            continue
        if source not in trained:
            reader.warning(
                f"{format_path(source)} has no effect: every phase sets its own learning_rate_scale",
                source,
                "move its factors into the phases that should keep them, or remove it",
                code="unused-setting",
                key=True,
            )
            continue
        matched = {pattern: set(patterns.match(str(pattern))) for pattern in written}
        last: dict[str, Any] = {}  # each layer's pattern: the last that matches it sets its factor
        for pattern, found in matched.items():
            last.update(dict.fromkeys(found & weighted, pattern))
        for pattern, found in matched.items():
            layers = {layer for layer, owner in last.items() if owner == pattern}
            if found & weighted and not layers:
                reader.warning(
                    f"the factor for {str(pattern)!r} has no effect: the patterns after it set the "
                    "factor of every layer it matches",
                    (*source, pattern),
                    "remove it, or write it after the patterns it should override",
                    code="unused-setting",
                    key=True,
                )
            elif found and not found & weighted:
                warn_weightless(reader, f"the factor for {str(pattern)!r}", (*source, pattern), key=True)
            elif layers and not layers & trained[source]:
                reader.warning(
                    f"the factor for {str(pattern)!r} has no effect: its layers are frozen in every "
                    "phase it applies to",
                    (*source, pattern),
                    "set it in the phase that unfreezes them, or remove it",
                    code="unused-setting",
                    key=True,
                )


def warn_weightless(reader: SectionReader, subject: str, path: SpecPath, *, key: bool = False) -> None:
    """A located warning for a pattern (of ``learning_rate_scale``, ``freeze`` or ``unfreeze``)
    that matches layers, none of which has weights: it changes nothing (a pooling, activation
    or dropout layer has nothing to train or keep), where the user meant other layers."""
    reader.warning(
        f"{subject} has no effect: the layers it matches have no weights to train",
        path,
        "name layers with weights (`cnnspec inspect` shows their parameters), or remove it",
        code="unused-setting",
        key=key,
    )


def warn_idle_patterns(
    reader: SectionReader, patterns: freezing.Patterns, ir: ModelIR, path: SpecPath, written: dict[str, Any]
) -> None:
    """Located warnings for the patterns of ``path``'s ``freeze`` and ``unfreeze`` (``written``:
    their lists) that change nothing: one whose layers have no weights (:func:`warn_weightless`),
    and a ``freeze`` pattern whose every layer with weights the same section's ``unfreeze``
    frees again (``freeze: [body]`` beside ``unfreeze: ["*"]``: unfreezing comes second, so the
    body trained). A pattern that matches nothing is an error already."""
    from cnnspec.analysis import freezing

    weighted = set(freezing.ordered(ir, patterns.layers))
    matched = {
        key: [
            (index, pattern, patterns.match(pattern) if isinstance(pattern, str) else [])
            for index, pattern in enumerate(items if isinstance(items, list) else [])
        ]
        for key, items in written.items()
    }
    for key, found_items in matched.items():
        for index, pattern, found in found_items:
            if found and not weighted.intersection(found):
                doing = {"freeze": "freezing", "unfreeze": "unfreezing"}[key]
                warn_weightless(reader, f"{doing} {pattern!r}", (*path, key, index))
    freeing = [(pattern, set(found)) for _, pattern, found in matched.get("unfreeze", [])]
    for index, pattern, found in matched.get("freeze", []):
        kept = weighted.intersection(found)
        undoing = [repr(other) for other, freed in freeing if kept & freed]
        if kept and kept <= set().union(*(freed for _, freed in freeing)):
            reader.warning(
                f"freezing {pattern!r} has no effect: the unfreeze beside it ({', '.join(undoing)}) "
                "frees every layer it matches, and unfreezing comes after freezing",
                (*path, "freeze", index),
                "narrow the unfreeze patterns to the layers that should train, or remove this one",
                code="unused-setting",
            )


def warn_capped_scales(reader: SectionReader, phases: list[tuple[PhaseConfig, SpecPath]]) -> None:
    """Factors under Adafactor's ``relative_step`` (its default): keras.optimizers.Adafactor caps
    each step's rate at 1/√step after the factor, so once the cap binds the scaled layers train
    at the others' rate. Said once per mapping."""
    capped = {
        source
        for phase, source in phases
        if phase.rate_scale
        and phase.optimizer.name == "adafactor"
        and phase.optimizer.settings.get("relative_step") is not False
    }
    for source in sorted(capped):
        reader.warning(
            "adafactor with relative_step (its default) caps each step's rate at 1/√step after the "
            f"factors of {format_path(source)}: once the cap binds, the scaled layers train at the "
            "others' rate",
            source,
            "set the phase's adafactor relative_step: false, or take another optimizer",
            code="weak-setting",
            key=True,
        )
