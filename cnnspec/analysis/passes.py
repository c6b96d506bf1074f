"""The front end as data: one tuple of passes, run in a loop (as sqlglot's optimizer runs its
``RULES``).

Each pass is a plain function ``(value, context) -> value`` from one typed stage to the next::

    Source ─load─▶ SourceDoc ─compose─▶ SourceDoc ─check_schema─▶ SourceDoc ─resolve─▶ CompiledSpec
        ─check_size─▶ CompiledSpec ─lint─▶ CompiledSpec ─check_sections─▶ CompiledSpec
        ─check_search─▶ CompiledSpec ─check_weights─▶ CompiledSpec

so :func:`run_passes` with a prefix of :data:`PASSES` stops at any stage (a test, a tool that
only wants the composed document). The :class:`Context` carries the options and the
diagnostics collected so far; a pass raises :class:`~cnnspec.errors.SpecError` when what comes
next cannot run. :func:`compile_spec` and :func:`compile_text` run all of them, so the Python
API reports exactly what ``cnnspec validate`` reports. Nothing here imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnspec.analysis import lint as lint_rules
from cnnspec.analysis import report
from cnnspec.analysis.compiled import CompiledSpec
from cnnspec.analysis.input_size import explain_small_input
from cnnspec.errors import Diagnostic, Diagnostics, SpecError, UsageError, closest
from cnnspec.spec.compose import Reader, apply_overrides, load_spec
from cnnspec.spec.loader import SourceDoc, load_text
from cnnspec.spec.resolve import Resolver
from cnnspec.spec.schema import section_names, validate_document
from cnnspec.spec.weights import WeightsSource

DEFAULT_MAX_PARAMS = report.DEFAULT_MAX_PARAMS

#: Sections the resolver does not read: schema errors there do not stop resolution, so the
#: user sees layer errors and training-section errors in one run.
INDEPENDENT_SECTIONS = ("data", "training", "runtime", "search", "name", "description", "cnnspec", "weights")

#: Paths whose schema errors do not stop resolution either: the resolver reads the value, but
#: takes it as failed (a bad input shape poisons the shapes after it, which stay silent), so
#: the layers' own mistakes, which do not depend on it, are reported in the same run.
POISONED_BY_SCHEMA = ("input.shape",)


@dataclass(frozen=True)
class Source:
    """Where a spec comes from: a file (read with its ``extends``/``use`` files) or text.

    ``reader`` may give the text of the file and of those it includes instead of the disk (an
    editor's unsaved buffers); see :data:`cnnspec.spec.compose.Reader`."""

    path: Path | None = None
    text: str | None = None
    file: str = "<string>"
    reader: Reader | None = None


@dataclass
class Context:
    """What every pass may read: the options of this compilation and its diagnostics so far."""

    overrides: tuple[str, ...] = ()
    allow_outside: bool = False
    max_params: int = DEFAULT_MAX_PARAMS
    path: Path | None = None  # recorded on the CompiledSpec (the spec file it came from)
    #: Explain a shape error inside an included file by the smallest input that fits
    #: (:mod:`cnnspec.analysis.input_size`: a few more resolutions, on an error path only;
    #: the language server explains too, as its diagnostics are validate's).
    explain_input: bool = True
    #: Check that each weights source's file or run folder is there (``cnnspec validate``, as
    #: training does before it writes anything). Off elsewhere: a run folder's resolved.yaml is
    #: compiled again for reports where those files may be gone, and inspect or codegen read none.
    weights_on_disk: bool = False
    #: Compile a finished run's resolved.yaml (:attr:`CompiledSpec.finished_run`): without the
    #: checks that only training needs.
    finished_run: bool = False
    diags: Diagnostics = field(default_factory=Diagnostics)


#: A pass: one typed value to the next.
Pass = Callable[[Any, Context], Any]


def load(source: Source, context: Context) -> SourceDoc:
    """Text → located tree: parse the file with its ``extends`` and ``use`` files, or the text."""
    # (defer: a value's error, such as a YAML 1.1 `yes`, is reported with the file's others)
    if source.path is not None:
        return load_spec(
            source.path, (), allow_outside=context.allow_outside, reader=source.reader, defer=True
        )
    doc = load_text(source.text or "", source.file, defer=True)
    for key in ("extends", "use"):  # (text alone reads no file: the key was ignored silently)
        if isinstance(doc.data, dict) and key in doc.data:
            raise SpecError.single(
                f"expected no `{key}` in spec text: compile_text reads no other file",
                doc.key_loc((key,)),
                key,
                code="compose",
                hint="compile the spec as a file (compile_spec), which reads the files it names",
            )
    return doc


def compose(doc: SourceDoc, context: Context) -> SourceDoc:
    """Apply the ``--set`` overrides in order (an error in one is reported with the errors
    of values the files hold, which nothing reported yet)."""
    try:
        apply_overrides(doc, context.overrides)
    except SpecError as exc:
        raise SpecError([*doc.value_errors, *exc.diagnostics]) from None
    return doc


def check_schema(doc: SourceDoc, context: Context) -> SourceDoc:
    """JSON Schema. Errors in the sections the resolver does not read wait for the resolver's,
    so one run reports both; any other schema error stops here."""
    validate_document(doc, context.diags)
    # A value that failed as it was read (`kernel_size: yes`) does not stop the resolver, which
    # takes it as failed; a schema error left out as its consequence (`times: yes` in a repeat,
    # which the resolver reads as checked) does.
    failed = {d.key() for d in doc.value_errors}
    found = [*context.diags.errors, *context.diags.silenced]
    # (full: errors past the limit were dropped unseen, a structural one maybe, `vars: x`,
    # which the resolver would read as checked)
    if context.diags.full or any(
        not d.path.startswith(INDEPENDENT_SECTIONS + POISONED_BY_SCHEMA)
        and d.key() not in failed
        and not _unread_unknown_section(d, doc)
        for d in found
    ):
        context.diags.raise_if_errors()
    return doc


def _unread_unknown_section(diagnostic: Diagnostic, doc: SourceDoc) -> bool:
    """Whether ``diagnostic`` is an unknown top-level key the resolver would not have read had
    it been spelt right: nothing close (``notes:``), or close to a section it does not read
    (``trainig:``). It stopped the layers' checks, though the resolver reads no unknown key.
    One meant for a section the resolver reads still stops them (``varz:``, ``bloks:``,
    ``augment:``): without it, the layers would fail for its absence (an unknown var, kind)."""
    if diagnostic.code != "unknown-key" or not isinstance(doc.data, dict):
        return False
    key = next((key for key in doc.data if isinstance(key, str) and key == diagnostic.path), None)
    if key is None or key in section_names():  # (not a top-level key of this document)
        return False
    return closest(key, section_names()) in (None, *INDEPENDENT_SECTIONS)


def resolve(doc: SourceDoc, context: Context) -> CompiledSpec:
    """Expand blocks, ``repeat`` and combinators, infer shapes and counts."""
    resolver = Resolver(doc, context.diags, allow_outside=context.allow_outside)
    ir = resolver.resolve()
    if context.diags.has_errors and context.explain_input:
        input_shape = resolver.shapes.get(resolver.input_name)
        explain_small_input(
            doc, context.diags, input_shape, allow_outside=context.allow_outside, steps=resolver.steps
        )
    context.diags.raise_if_errors()
    return CompiledSpec(
        doc,
        ir,
        list(context.diags.warnings),
        context.path,
        finished_run=context.finished_run,
        overrides=context.overrides,
    )


def check_size(compiled: CompiledSpec, context: Context) -> CompiledSpec:
    """Refuse models over ``max_params`` before anything is built."""
    report.check_size(compiled.ir, context.max_params, context.diags, compiled.doc.loc(("model",)))
    context.diags.raise_if_errors()
    return compiled


def lint(compiled: CompiledSpec, context: Context) -> CompiledSpec:
    """Warnings about specs that compile but would train badly (:mod:`cnnspec.analysis.lint`)."""
    compiled.warnings.extend(lint_rules.lint(compiled))
    return compiled


def check_sections(compiled: CompiledSpec, context: Context) -> CompiledSpec:
    """The ``data``, ``training`` and ``runtime`` sections, checked the way ``cnnspec train``
    reads them (:func:`~cnnspec.analysis.settings.training_config`), when the spec has a
    ``training`` or a ``data`` section: a spec that compiles also trains. ``train`` trains a
    spec with data and no training section at the default settings, so its outputs' tasks are
    checked against the data source here too (validate passed a segmentation model on
    ``digits`` that ``train`` then refused). A spec with neither (every zoo model, a feature
    extractor) is a model only."""
    if "training" in compiled.doc.data or "data" in compiled.doc.data:
        # Imported here: a spec without these sections (every zoo model) never needs it.
        from cnnspec.analysis.datafit import check_known_classes, check_mask_table, check_named_dataset_shape
        from cnnspec.analysis.settings import training_config

        config = training_config(compiled, compiled.warnings)
        check_named_dataset_shape(compiled, config)
        check_known_classes(compiled, config)
        check_mask_table(compiled, config)
    return compiled


def check_search(compiled: CompiledSpec, context: Context) -> CompiledSpec:
    """The ``search`` section (:mod:`cnnspec.analysis.search_check`): paths, objective, every
    candidate value, and the shapes of every combination of the model's dimensions."""
    if "search" not in compiled.doc.data:
        return compiled
    from cnnspec.analysis.search_check import check_search as check

    def compile_trial(doc: SourceDoc) -> CompiledSpec:  # a trial's spec has no search section
        # (without the smallest-input note: each failing combination would cost resolutions)
        return compile_doc(
            doc,
            max_params=context.max_params,
            path=compiled.path,
            allow_outside=context.allow_outside,
            explain_input=False,
        )

    before = len(context.diags.warnings)
    compiled.search = check(compiled, context.diags, compile_trial)
    context.diags.raise_if_errors()
    compiled.warnings.extend(context.diags.warnings[before:])  # (a space only sampled: said)
    return compiled


def check_weights(compiled: CompiledSpec, context: Context) -> CompiledSpec:
    """The top-level ``weights`` section (:mod:`cnnspec.spec.weights`): a kind of source
    cnnspec reads, ``imagenet`` only for zoo models; with :attr:`Context.weights_on_disk`, that
    its file or run folder is there, and each backbone's (else at training)."""
    from cnnspec.analysis.settings_reader import section_env
    from cnnspec.spec.weights import IMAGENET, check_imagenet_input, check_imagenet_size, spec_weights
    from cnnspec.spec.zoo import variants

    spec_dir = compiled.path.parent if compiled.path is not None else Path.cwd()
    # A run folder's resolved.yaml no longer says which zoo variant it extended; its `variants`
    # table, written reduced to the variant (spec.zoo.written_data), still names it (training,
    # which needs the variant, checks again). A family file of the user's is no zoo model.
    zoo = compiled.doc.zoo_variant is not None or _names_a_zoo_variant(compiled.doc.data.get("variants"))
    whole = spec_weights(compiled.doc, spec_dir, zoo, on_disk=False)
    check_imagenet_input(whole, compiled.ir.input_shape)
    # (each backbone's own is checked where the resolver takes it: spec/backbone.py)
    variant = compiled.doc.zoo_variant
    if whole is not None and whole.kind == IMAGENET and variant is not None:  # (the vars: imagenet's only)
        include_top = bool(section_env(compiled).get("include_top", True))
        check_imagenet_size(whole, variants()[variant].keras_name, include_top, compiled.ir.input_shape)
    if context.weights_on_disk:
        _weights_on_disk(compiled, whole)
    return compiled


def _weights_on_disk(compiled: CompiledSpec, whole: WeightsSource | None) -> None:
    """Raise the errors training would give for weights sources that are not on the disk: each
    backbone's, then the whole model's, each located where it is written (with ``included
    from`` notes in an ``extends`` base)."""
    from cnnspec.ir import Backbone, walk
    from cnnspec.spec.weights import on_disk

    tree = compiled.ir.tree
    sources = [part.weights for part in walk(tree.body) if isinstance(part, Backbone)] if tree else []
    diags = Diagnostics(includes=dict(compiled.doc.includes))
    for source in [*sources, whole]:
        if source is None:
            continue
        try:
            on_disk(source)
        except SpecError as exc:
            for diagnostic in exc.diagnostics:
                diags.add(diagnostic)
    diags.raise_if_errors()


def checks_weights_on_disk(path: Path) -> bool:
    """Whether ``cnnspec validate`` (and the editor, which shows its errors) checks that the
    weights sources of the spec ``path`` are on the disk: every spec but a run's
    ``resolved.yaml`` (beside its ``lock.json``), which keeps its sources as the spec wrote them,
    relative to the spec's folder, not to the run folder it lies in (validate refused a run's
    own record for a run folder it was never meant to find there)."""
    return not (path.name == "resolved.yaml" and (path.parent / "lock.json").is_file())


def _names_a_zoo_variant(table: Any) -> bool:
    """Whether ``table`` (a document's ``variants``) is the zoo's: each row named after a zoo
    variant (one row since resolved.yaml writes it reduced; the family's whole table before)."""
    from cnnspec.spec.zoo import variants

    return isinstance(table, dict) and bool(table) and all(name in variants() for name in table)


#: The front end, in order.
PASSES: tuple[Pass, ...] = (
    load, compose, check_schema, resolve, check_size, lint, check_sections, check_search, check_weights,
)  # fmt: skip


def run_passes(value: Any, context: Context | None = None, passes: tuple[Pass, ...] = PASSES) -> Any:
    """Run ``passes`` in order on ``value``; the result of the last one."""
    context = context if context is not None else Context()
    for step in passes:
        value = step(value, context)
    if isinstance(value, CompiledSpec):  # by position, as errors are (each pass added its own)
        value.warnings.sort(key=Diagnostic.sort_key)
    return value


def after(step: Pass) -> tuple[Pass, ...]:
    """The passes that follow ``step`` in :data:`PASSES`."""
    return PASSES[PASSES.index(step) + 1 :]


def compile_doc(
    doc: SourceDoc,
    *,
    max_params: int = DEFAULT_MAX_PARAMS,
    path: Path | None = None,
    allow_outside: bool = False,
    explain_input: bool = True,
    finished_run: bool = False,
) -> CompiledSpec:
    """Run every pass after ``compose`` on a loaded document.

    ``allow_outside`` (``--allow-outside``) lets a backbone's spec file lie outside the spec's
    folder; the document's own ``extends``/``use`` files were read when it was loaded.
    ``explain_input``: see :attr:`Context.explain_input`; ``finished_run``: see
    :attr:`Context.finished_run`."""
    context = Context(
        allow_outside=allow_outside,
        max_params=max_params,
        path=path,
        explain_input=explain_input,
        finished_run=finished_run,
    )
    result: CompiledSpec = run_passes(doc, context, after(compose))
    return result


def override_tuple(overrides: str | Iterable[str]) -> tuple[str, ...]:
    """The ``--set`` overrides a caller passes, as a tuple: one string is one override (a
    library call's ``"vars.width=8"`` was read character by character, as ``v``, ``a``, …).
    Anything else is a :class:`UsageError` (``[3]`` failed as an AttributeError in the loader)."""
    if isinstance(overrides, str):
        return (overrides,)
    if not isinstance(overrides, Iterable) or isinstance(overrides, (bytes, dict)):
        raise UsageError(
            f"expected the overrides as a list of strings; received {overrides!r}",
            'write each as path=value, e.g. ["vars.width=64"]',
        )
    given = tuple(overrides)  # (any iterable: a generator is read once)
    for item in given:
        if not isinstance(item, str):
            raise UsageError(
                f"expected each override as a string path=value; received {item!r}",
                'e.g. "vars.width=64" or "model[0].conv2d.filters=32"',
            )
    return given


def _argument(value: Any, name: str, types: tuple[type, ...], what: str) -> None:
    """Refuse a library call's argument ``name`` of another type than ``types`` (``what`` says
    them) as a :class:`UsageError`: a file name of ``None`` failed as an AttributeError once the
    spec had an error to locate in it."""
    if not isinstance(value, types):
        raise UsageError(f"expected {name} as {what}; received {value!r}")


def compile_spec(
    path: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    allow_outside: bool = False,
    max_params: int = DEFAULT_MAX_PARAMS,
    reader: Reader | None = None,
    weights_on_disk: bool = False,
) -> CompiledSpec:
    """Run the whole front end on a spec file; raises SpecError with located diagnostics.

    ``reader`` supplies unsaved text for the file or its includes (``cnnspec lsp``);
    ``weights_on_disk``: see :attr:`Context.weights_on_disk`."""
    _argument(path, "the spec's path", (str, Path), "a string or a Path")
    context = Context(
        override_tuple(overrides), allow_outside, max_params, Path(path), weights_on_disk=weights_on_disk
    )
    result: CompiledSpec = run_passes(Source(path=Path(path), reader=reader), context)
    result.options = (
        *(("--allow-outside",) if allow_outside else ()),
        *(("--max-params", str(max_params)) if max_params != DEFAULT_MAX_PARAMS else ()),
    )
    return result


def compile_text(
    text: str,
    file: str = "<string>",
    overrides: list[str] | tuple[str, ...] = (),
    *,
    max_params: int = DEFAULT_MAX_PARAMS,
) -> CompiledSpec:
    """Like :func:`compile_spec` for spec text. The text reads no other file: an ``extends`` or
    ``use`` key in it is a located error (compile a file with :func:`compile_spec` for those)."""
    _argument(text, "the spec's text", (str,), "a string")
    _argument(file, "the file name it is reported under", (str,), "a string")
    context = Context(override_tuple(overrides), max_params=max_params)
    result: CompiledSpec = run_passes(Source(text=text, file=file), context)
    return result
