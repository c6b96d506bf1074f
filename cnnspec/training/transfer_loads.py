"""A spec's weight loads: which sources a spec (or ``--weights``) starts its model from, whole or
per backbone (:func:`spec_loads`), planned in order against the built model
(:func:`plan_loads`, :func:`plan_for_spec`), what lock.json records of them
(:func:`override_record`, :func:`file_records`) and, when a run is resumed or restarted, the
same sources found again and checked unchanged (:func:`plan_for_restart`,
:func:`check_unchanged`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnspec.errors import SpecError, UsageError
from cnnspec.fileio import sha256_file
from cnnspec.spec.weights import IMAGENET, KINDS, WeightsSource
from cnnspec.training.transfer import largest_weight, plan_transfer
from cnnspec.training.transfer_imagenet import ApplicationFile, imagenet_weights_file
from cnnspec.training.transfer_read import read_source
from cnnspec.training.transfer_records import TransferPlan

if TYPE_CHECKING:
    from cnnspec.analysis.weights_run import WeightsRun


@dataclass(frozen=True)
class Load:
    """One source to load: into the whole model (``scope`` empty) or a backbone's scope, with
    what ``imagenet`` needs to find its file."""

    source: WeightsSource
    scope: str = ""
    keras_name: str = ""
    include_top: bool = True
    input_shape: tuple[int, ...] = ()
    names: frozenset[str] | None = None  # a backbone's layers (None: the whole model)


def spec_loads(compiled: Any, override: str | WeightsSource | None = None) -> list[Load]:
    """The loads a spec asks for, in order: each backbone's own source into its scope, then the
    whole model's (``override``: ``--weights``, which replaces the spec's ``weights:``; as
    given, or the checked source a run recorded, :func:`recorded_source`)."""
    from cnnspec.ir import Backbone, walk
    from cnnspec.spec.weights import on_disk, spec_weights
    from cnnspec.spec.zoo import variants

    loads: list[Load] = []
    tree = compiled.ir.tree
    for part in walk(tree.body) if tree is not None else ():
        if isinstance(part, Backbone) and part.weights is not None:
            source = on_disk(part.weights)  # compiling checked the text; now the disk
            shape = compiled.ir.shape_of(part.entry)
            loads.append(
                Load(
                    source,
                    part.prefix.removesuffix("_"),
                    part.keras_name,
                    part.include_top,
                    tuple(shape or ()),
                    frozenset(part.names),
                )
            )
    variant = compiled.doc.zoo_variant
    zoo = _is_zoo(compiled)
    spec_dir = compiled.path.parent if compiled.path is not None else Path.cwd()
    if isinstance(override, WeightsSource):
        whole: WeightsSource | None = override
    elif override is not None:
        whole = _override_source(compiled, override)
    else:
        whole = spec_weights(compiled.doc, spec_dir, zoo)
    if whole is not None:
        keras_name = variants()[variant].keras_name if zoo and variant is not None else ""
        from cnnspec.analysis.settings_reader import section_env

        include_top = bool(section_env(compiled).get("include_top", True))
        loads.append(Load(whole, "", keras_name, include_top, tuple(compiled.ir.input_shape)))
    return loads


def whole_run(compiled: Any, config: Any, override: str | None = None) -> WeightsRun | None:
    """The run folder the whole model's weights come from (``--weights``, else the spec's
    ``weights:``), read as :func:`cnnspec.analysis.weights_run.weights_run` reads it: the seed
    that split its data and whether it trained on ``config``'s data source; ``None`` where the
    model starts from no run folder. A backbone's own source starts a part of the model only,
    and is not asked."""
    from cnnspec.analysis.weights_run import weights_run

    whole = next((load.source for load in spec_loads(compiled, override) if not load.scope), None)
    return weights_run(whole, config.data, getattr(compiled, "path", None))


def _is_zoo(compiled: Any) -> bool:
    """Whether the spec's model is a zoo variant (``imagenet`` may be asked for)."""
    from cnnspec.spec.zoo import variants

    variant = compiled.doc.zoo_variant
    return variant is not None and variant in variants()


def _override_source(compiled: Any, override: str) -> WeightsSource:
    """``--weights SOURCE``, checked (on disk too)."""
    from cnnspec.spec.weights import check_imagenet_input, cli_weights

    source = cli_weights(override, _is_zoo(compiled))
    check_imagenet_input(source, tuple(compiled.ir.input_shape))
    return source


def plan_loads(
    model: Any, loads: list[Load], fetch: Callable[[ApplicationFile], Path] | None = None
) -> list[TransferPlan]:
    """Read and match every load against ``model`` (nothing assigned): all errors come now."""
    plans: list[TransferPlan] = []
    limit = largest_weight(model)  # no source tensor larger than this is read
    loaded: set[tuple[str, int]] = set()  # what the loads before this one assign (applied in order)
    for load in loads:
        file = None
        if load.source.kind == IMAGENET:
            file = imagenet_weights_file(
                load.source, load.keras_name, load.include_top, load.input_shape, fetch
            )
        found = read_source(load.source, imagenet_file=file, max_elements=limit)
        if file is not None:  # (the ImageNet model's own rescaling, where it has one)
            from cnnspec.backends.weights import fold_imagenet_rescaling

            found = replace(found, layers=fold_imagenet_rescaling(found.layers, load.keras_name))
        plan = plan_transfer(model, load.source, found, load.scope, load.names, frozenset(loaded))
        loaded.update((layer, index) for layer, index, _ in plan.assign)
        if file is not None:
            plan.source = f"imagenet ({file})"  # which of keras.applications' files
        read = file if file is not None else load.source.file
        if read is not None:
            plan.file, plan.sha256 = str(Path(read).absolute()), sha256_file(read)
        plans.append(plan)
    return plans


def plan_for_spec(compiled: Any, override: str | None = None) -> list[TransferPlan]:
    """The checked transfer plans of a spec (``[]`` when it loads no weights), matched against a
    throwaway build of its model, so a bad source fails before a run folder is written."""
    loads = spec_loads(compiled, override)
    if not loads:
        return []
    from cnnspec.backends.keras_builder import build_model

    return plan_loads(build_model(compiled.ir), loads)


# -- a run restarted from epoch 1 --------------------------------------------------------------
def override_record(
    compiled: Any, override: str | None, plans: Sequence[TransferPlan] = ()
) -> dict[str, Any] | None:
    """What lock.json keeps of ``--weights`` (``None`` without it): the checked source with its
    file's absolute path and the SHA-256 of its bytes (a run folder's: its model.keras), so that
    a run resumed before its first snapshot, perhaps from another folder, starts again from the
    same weights, and is refused when the file there now holds others (:func:`recorded_source`).
    ``imagenet`` has no file of its own (``file`` and ``sha256`` are ``None``). ``plans``: the
    run's checked plans, whose whole-model load has hashed the file already."""
    if override is None:
        return None
    source = _override_source(compiled, override)
    file = None if source.file is None else str(source.file.absolute())
    hashed = next((plan.sha256 for plan in plans if not plan.scope and plan.file == file), None)
    return {
        "from": source.text,
        "kind": source.kind,
        "file": file,
        "strict": source.strict,
        "sha256": None if source.file is None else hashed or sha256_file(source.file),
    }


def recorded_source(record: Any, run_dir: Path) -> WeightsSource:
    """The ``--weights`` source a run's lock.json recorded (:func:`override_record`), checked on
    disk again: a file that is gone since refuses the resume (naming it), and so does one whose
    bytes changed (its SHA-256 is not the recorded one: the run would quietly start from other
    weights than those it first started from). A record without ``sha256`` (an older cnnspec's)
    is not checked, as a lock.json without the data's content hash is not."""
    lock_file = Path(run_dir) / "lock.json"
    fields = record if isinstance(record, Mapping) else {}
    kind, text, file = fields.get("kind"), fields.get("from"), fields.get("file")
    if kind not in KINDS or not isinstance(text, str) or (file is None) != (kind == IMAGENET):
        raise UsageError(
            f"expected the --weights source in {lock_file} as cnnspec records it; received {record!r}",
            "start a new run (without --resume)",
        )
    source = WeightsSource(
        str(kind), text, None if file is None else Path(str(file)), bool(fields.get("strict"))
    )
    if source.file is not None and not source.file.is_file():
        raise UsageError(
            f"the run in {run_dir} started from --weights {text} ({source.file}), which is gone; the run "
            "saved no training state yet, so resuming it would start again from those weights",
            f"put {source.file} back, or start a new run (without --resume)",
        )
    recorded = fields.get("sha256")
    if source.file is not None and recorded is not None and sha256_file(source.file) != recorded:
        raise UsageError(
            f"expected the same --weights {text} ({source.file}) as the run in {run_dir} started from; "
            "the file's content hash changed, and the run saved no training state yet, so resuming it "
            "would start again from other weights",
            f"put the file the run started from back at {source.file}, or start a new run (without --resume)",
        )
    return source


def _started_with_weights(lock: Mapping[str, Any]) -> bool:
    """Whether the run's command line had ``--weights`` (a lock.json from before the source
    was recorded tells only that)."""
    command = lock.get("command")
    words = [str(word) for word in command] if isinstance(command, list) else []
    return any(word == "--weights" or word.startswith("--weights=") for word in words)


def plan_for_restart(compiled: Any, lock: Mapping[str, Any], run_dir: Path) -> list[TransferPlan]:
    """The checked plans of a resumed run that saved no training state yet (killed in its first
    epoch): the spec's sources and the ``--weights`` source lock.json recorded, as the run
    first planned them, so it starts again from the same weights. A source that is gone (or no
    longer fits) refuses the resume; nothing of the run has changed by then."""
    if "weights" not in lock and _started_with_weights(lock):
        raise UsageError(
            f"the run in {run_dir} was started with --weights and saved no training state yet; its "
            "lock.json (an older cnnspec's) does not record the source, so it cannot start again from it",
            "start a new run (without --resume) with the same --weights",
        )
    record = lock.get("weights")
    override = recorded_source(record, run_dir) if record is not None else None
    again = (
        f"the run in {run_dir} saved no training state yet, so it starts again from its weights "
        "sources: put this one back as it was, or start a new run (without --resume)"
    )
    try:
        loads = spec_loads(compiled, override)
        if not loads:
            return []
        from cnnspec.backends.keras_builder import build_model

        return check_unchanged(plan_loads(build_model(compiled.ir), loads), lock, run_dir)
    except SpecError as error:  # located in the spec: the same, with what to do about the resume
        raise SpecError([replace(d, hint=_joined(d.hint, again)) for d in error.diagnostics]) from None
    except UsageError as error:
        error.hint = _joined(error.hint, again)
        raise


def file_records(plans: list[TransferPlan]) -> list[dict[str, Any]]:
    """lock.json's ``weights_files``: every weights file the run starts from (the spec's own
    sources, ``--weights`` and ImageNet's cached files), with the SHA-256 of its bytes."""
    return [plan.file_record() for plan in plans if plan.file is not None]


def check_unchanged(plans: list[TransferPlan], lock: Mapping[str, Any], run_dir: Path) -> list[TransferPlan]:
    """``plans`` when each file they read again holds the bytes lock.json's ``weights_files``
    recorded when the run started (matched by scope and file); otherwise a refusal naming the
    file: a run restarted from its weights would quietly start from others. A lock.json without
    ``weights_files`` (an older cnnspec's) is not checked."""
    recorded = lock.get("weights_files")
    if not isinstance(recorded, list):
        return plans
    hashes = {
        (str(r.get("scope") or ""), str(r.get("file"))): r.get("sha256")
        for r in recorded
        if isinstance(r, Mapping)
    }
    for plan in plans:
        before = hashes.get((plan.scope, str(plan.file)))
        if plan.file is not None and before is not None and before != plan.sha256:
            where = f" (into {plan.scope})" if plan.scope else ""
            raise UsageError(
                f"expected the same weights file {plan.file}{where} as the run in {run_dir} started from; "
                "its content hash changed since",
                f"put the file the run started from back at {plan.file}",
            )
    return plans


def _joined(hint: str | None, more: str) -> str:
    return f"{hint}; {more}" if hint else more
