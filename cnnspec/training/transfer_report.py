"""The transfer report: transfer.json in the run folder (:func:`write_report`), one record for a
single load or the loads of several sources with each tensor counted once, and the warnings for
an output layer loaded from a run that ordered its classes otherwise (:func:`class_order_notes`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cnnspec.fileio import write_atomic
from cnnspec.spec.weights import RUN_MODEL
from cnnspec.training.transfer_records import TransferPlan

REPORT_FILE = "transfer.json"


def report_json(plans: list[TransferPlan]) -> dict[str, Any]:
    """transfer.json: the one load's record; several (backbones and the whole model) are each
    kept under ``parts``, and the top level counts each of the model's tensors once: loaded
    when any source loaded it (the whole model's source may load again what a backbone's did),
    skipped (with the first source's reason) when none did."""
    if len(plans) == 1:
        return plans[0].as_json()
    loaded = {(layer, index) for plan in plans for layer, index, _ in plan.assign}
    skipped: list[dict[str, Any]] = []
    seen: set[tuple[str, int]] = set()
    for plan in plans:
        for skip in plan.skipped:
            key = (skip.layer, skip.index)
            if key in loaded or key in seen:  # (a backbone's miss the whole model's source filled)
                continue
            seen.add(key)
            skipped.append({**skip.as_json(), **({"scope": plan.scope} if plan.scope else {})})
    return {
        "source": "; ".join(p.source for p in plans),
        "loaded": len(loaded),
        "total": len(loaded) + len(skipped),
        "skipped": skipped,
        "parts": [p.as_json() for p in plans],
    }


def class_order_notes(plans: Sequence[TransferPlan], outputs: Sequence[tuple[str, list[str]]]) -> list[str]:
    """Warnings for an output layer loaded whole from a run folder that named that output's
    classes otherwise (``[0, 1]`` there, ``[1, 0]`` here): its weights keep the source's order,
    so it starts out calling each class by another's name, and loading says nothing else
    (the shapes match). ``outputs``: each output layer's name and this run's names for it. A
    source without a readable lock.json (a bare ``.keras`` file) has no names to compare."""
    notes = []
    for plan in plans:
        if plan.file is None or Path(plan.file).name != RUN_MODEL:
            continue
        theirs = _recorded_names(Path(plan.file).parent / "lock.json")
        loaded = {layer for layer, _, _ in plan.assign}
        for layer, names in outputs:
            source_names = theirs.get(layer)
            if layer in loaded and names and source_names and source_names != names:
                notes.append(
                    f"the output layer {layer!r} was loaded from {plan.source}, whose run names its "
                    f"outputs {source_names}; this run names them {names} (give the layer another "
                    "id to train it from scratch, or list data.classes in the source's order)"
                )
    return notes


def _recorded_names(lock: Path) -> dict[str, list[str]]:
    """Each output layer's names (class names, columns) a run's lock.json records; none when
    it cannot be read (the load itself was checked already)."""
    try:
        tasks = json.loads(lock.read_text(encoding="utf-8")).get("tasks")
    except (OSError, ValueError, AttributeError):
        return {}
    return {
        str(task["name"]): [str(n) for n in task["names"]]
        for task in tasks if isinstance(task, dict) and isinstance(task.get("names"), list) and "name" in task
    } if isinstance(tasks, list) else {}  # fmt: skip


def write_report(run_dir: Path, plans: list[TransferPlan]) -> Path:
    """Write RUN/transfer.json atomically."""
    return write_atomic(Path(run_dir) / REPORT_FILE, json.dumps(report_json(plans), indent=2) + "\n")
