"""The open documents and what the compiler says about each: unsaved text in, analyses out.

A spec is checked by exactly the passes ``cnnspec validate`` runs
(:data:`cnnspec.analysis.passes.PASSES`), from its path, with a reader that hands the composer
the editor's text for every open file (the spec and any ``extends``/``use``/``zoo:`` file it
includes) instead of the disk. Every file the composer asked for is recorded, whether the
compilation then succeeds or fails, so an edit of a block library re-checks the open specs
that read it: the include tracking follows the composition pass, not paths known here.

One check is deferred: a ``search:`` section's candidates, each compiled alone and in every
combination (up to 256 models, seconds for a zoo model), are compiled when the document is
opened or saved (a *full* check). A check on type runs every other check, the search
section's paths and objective included, and repeats the candidate findings of the document's
last full check (each moved with its line where lines were added or removed above it, dropped
where its line is gone: :func:`follow_lines`) instead of compiling them again. Those findings
are kept until candidates are compiled again: a check
that fails before reaching the candidates (invalid YAML while typing) leaves them as they
were. A full check that could not reach them (the text had an error when it was opened or
saved) leaves them owed: the first check that reaches them compiles them, once.

Where compiling them would take long (:data:`BACKGROUND_COST`: a model of a thousand layers
and a search of a hundred candidate models is seconds), the server's checks leave them owed,
repeat the last findings, and the server compiles them in a thread of its own on the text of
that moment (:meth:`Documents.search_job`); their findings are kept when that text is still the
editor's (:meth:`Documents.adopt`), and requests are answered in the meantime.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from cnnspec.analysis.compiled import CompiledSpec
from cnnspec.analysis.passes import (
    PASSES,
    Context,
    Pass,
    Source,
    after,
    check_search,
    checks_weights_on_disk,
    compile_doc,
    compose,
    run_passes,
)
from cnnspec.analysis.search_check import check_candidates, check_space, planned_compiles
from cnnspec.errors import Diagnostic, Loc, SpecError
from cnnspec.spec.compose import Reader
from cnnspec.spec.family import family_variants, unsaid, variant_notes
from cnnspec.spec.library import check_library, is_library_keys
from cnnspec.spec.loader import SOURCE_TEXTS, SourceDoc, display_name
from cnnspec.spec.search import SearchSpace

#: Layer compilations (the model's layers, times the trial specs that
#: :func:`~cnnspec.analysis.search_check.planned_compiles` counts) above which the server's
#: checks leave a document's search candidates to a thread of their own: about a second of CPU,
#: at some 50 µs a layer. A spec of about 1,000 layers whose search compiles ~170 models held the
#: server's event loop for 15-53 s on open and save, every request waiting.
BACKGROUND_COST = 20_000

#: The passes that give the composed, located document (load, compose).
COMPOSE = PASSES[: PASSES.index(compose) + 1]

#: The top-level keys only cnnspec files have.
_SPEC_KEYS = frozenset({"cnnspec", "model", "blocks", "extends", "use"})
#: A schema modeline naming cnnspec's schema.
_MODELINE = re.compile(r"^#[ \t]*yaml-language-server:.*cnnspec", re.MULTILINE)
#: A key at the start of a line (a block mapping's top level), plain or quoted.
_BLOCK_KEY = re.compile(r"""^(["']?)(?P<key>[A-Za-z_][\w-]*)\1[ \t]*:""", re.MULTILINE)
#: A key after a flow mapping's ``{`` or ``,`` (JSON included), plain or quoted.
_FLOW_KEY = re.compile(r"""[{,]\s*(["']?)(?P<key>[A-Za-z_][\w-]*)\1\s*:""")
#: Lines before a document's content: blank, comments, directives, the ``---`` marker.
_PREAMBLE = re.compile(r"\s*(?:[#%].*)?|---\s*")


def looks_like_spec(text: str) -> bool:
    """Whether ``text`` is a cnnspec spec or block library. Editors start the server for every
    YAML file (CI workflows, compose files): those get no diagnostics from it."""
    return _MODELINE.search(text) is not None or bool(_top_keys(text) & _SPEC_KEYS)


def _top_keys(text: str) -> set[str]:
    """The document's top-level keys, cheaply (this runs on every keystroke): the keys that
    start a line, or for a document written as one flow mapping (``{cnnspec: 1, …}``, JSON)
    every key of it; nested ones too, an over-approximation no ordinary spec trips over."""
    pattern = _FLOW_KEY if _is_flow(text) else _BLOCK_KEY
    return {m.group("key") for m in pattern.finditer(text)}


def _is_flow(text: str) -> bool:
    """Whether the document's content starts with ``{`` (after comments and directives)."""
    for line in text.lstrip("\ufeff").splitlines():
        if not _PREAMBLE.fullmatch(line):
            return line.lstrip().startswith("{")
    return False


@dataclass
class Analysis:
    """What one check of an open document found."""

    path: Path
    version: int | None
    diagnostics: list[Diagnostic]
    #: The composed document with locations (``None`` when it could not be loaded).
    doc: SourceDoc | None = None
    #: The compiled spec (``None`` when the front end reported an error).
    compiled: CompiledSpec | None = None
    #: Every file the composition read: the document and the files it includes.
    files: set[Path] = field(default_factory=set)
    #: A block library (``blocks`` and no ``model``): checked as ``use:`` checks one.
    library: bool = False
    #: The text of each file read, as the editor held it (``None``: read from the disk).
    texts: dict[Path, str | None] = field(default_factory=dict)
    #: What compiling the search candidates found, by this check or the full check whose
    #: findings it repeats (empty: none found, or no search section read).
    searched: list[Diagnostic] = field(default_factory=list)
    #: The search candidates are owed and left to a thread (:meth:`Documents.search_job`):
    #: ``searched`` repeats the findings of their last compilation meanwhile.
    search_deferred: bool = False

    @property
    def name(self) -> str:
        """The file name as diagnostics and locations spell it."""
        return display_name(self.path)


@dataclass
class Open:
    text: str
    version: int | None


class Documents:
    """The editor's open documents (by resolved path) and their latest analyses."""

    def __init__(self) -> None:
        self.open: dict[Path, Open] = {}
        self.analyses: dict[Path, Analysis] = {}
        #: What compiling each document's search candidates found, the last time they were
        #: compiled (kept across checks that never reach them: see the module's docstring).
        self.searched: dict[Path, list[Diagnostic]] = {}
        #: The text each document had when its candidates were compiled (their positions').
        self.searched_text: dict[Path, str] = {}
        #: The documents whose candidates a full check asked for and no check compiled yet.
        self.owed: set[Path] = set()

    def set(self, path: Path, text: str, version: int | None = None) -> None:
        self.open[path] = Open(text, version)

    def close(self, path: Path) -> None:
        self.open.pop(path, None)
        self.analyses.pop(path, None)
        self.searched.pop(path, None)
        self.searched_text.pop(path, None)
        self.owed.discard(path)

    def text(self, path: Path) -> str | None:
        entry = self.open.get(path)
        return entry.text if entry is not None else None

    def current(self, analysis: Analysis) -> bool:
        """Whether every open file ``analysis`` read still has the text it read (its
        locations are positions in the editor's text)."""
        return all(self.text(f) == text for f, text in analysis.texts.items())

    def dependents(self, path: Path) -> list[Path]:
        """The other open documents whose last check read ``path``."""
        return [p for p, a in self.analyses.items() if p != path and path in a.files and p in self.open]

    def analyze(self, path: Path, full: bool = False, background: bool = False) -> Analysis:
        """Check the open document ``path`` (its unsaved text) and remember the result;
        ``full``: compile its search candidates too (open, save), else repeat what they
        gave when last compiled (compiled now if a full check still owes them).
        ``background``: candidates that would take long to compile (:data:`BACKGROUND_COST`)
        stay owed, their last findings repeated, and the analysis says ``search_deferred``
        (the server compiles them with :meth:`search_job`)."""
        if full:
            self.owed.add(path)
        owed = path in self.owed or path not in self.searched
        previous = self._previous(path)
        run = SearchRun(None if owed else previous, background=background, previous=previous)
        entry = self.open.get(path)
        analysis = self._check(path, self.text, entry.version if entry is not None else None, run)
        self._record(path, analysis, run)
        return analysis

    def search_job(self, path: Path) -> Callable[[], tuple[Analysis, SearchRun]]:
        """A check of ``path`` that compiles its search candidates, on the texts the editor
        holds now, to run in another thread: it reads that copy (and files on the disk) and
        changes nothing here. :meth:`adopt` takes its result, on the server's thread."""
        texts: Mapping[Path, str] = {p: entry.text for p, entry in self.open.items()}
        entry = self.open.get(path)
        version = entry.version if entry is not None else None

        def job() -> tuple[Analysis, SearchRun]:
            run = SearchRun()
            return self._check(path, texts.get, version, run), run

        return job

    def adopt(self, path: Path, analysis: Analysis, run: SearchRun) -> bool:
        """Keep what a :meth:`search_job` found as the document's analysis, unless it was
        closed or a file the job read was edited since (a later check owes the candidates
        then); whether it was kept."""
        if path not in self.open or not self.current(analysis):
            return False
        self._record(path, analysis, run)
        return True

    def _previous(self, path: Path) -> list[Diagnostic]:
        """The findings of the last compilation of ``path``'s candidates, moved with their
        lines to the text it holds now (:func:`follow_lines`)."""
        found = self.searched.get(path)
        if not found or self.searched_text.get(path) == self.text(path):
            return list(found or [])
        return follow_lines(
            found, display_name(path), self.searched_text.get(path) or "", self.text(path) or ""
        )

    def _check(
        self, path: Path, text_of: Callable[[Path], str | None], version: int | None, run: SearchRun
    ) -> Analysis:
        """The analysis of ``path``, every file read through ``text_of`` (``None``: from the
        disk); nothing here is changed (a search job runs this in its own thread)."""
        files: set[Path] = set()

        def reader(target: Path) -> str | None:
            files.add(target)
            return text_of(target)

        try:
            if not looks_like_spec(text_of(path) or ""):
                analysis = Analysis(path, version, [])
            elif is_library(text_of(path)):
                analysis = self._library(path, reader, version)
            else:
                analysis = check_family(path, reader, version, run)
        except Exception as exc:  # a compiler bug must not take the editor's server down
            message = f"internal error while checking ({type(exc).__name__}: {exc}); please report it"
            analysis = Analysis(path, version, [Diagnostic(message, Loc(display_name(path), 1, 1))])
        analysis.files |= files | {path}
        analysis.texts = {f: text_of(f) for f in analysis.files}
        analysis.search_deferred = run.deferred
        return analysis

    def _record(self, path: Path, analysis: Analysis, run: SearchRun) -> None:
        """Remember ``analysis`` as the document's, and what its candidates gave."""
        if run.compiled or (run.reached and not run.section):
            # compiled, or nothing to compile (no search section): nothing owed any more
            self.searched[path] = run.found if run.compiled else []
            self.searched_text[path] = analysis.texts.get(path) or ""
            self.owed.discard(path)
        self.analyses[path] = analysis

    def _library(self, path: Path, reader: Reader, version: int | None) -> Analysis:
        """A block library is checked as ``cnnspec validate`` checks one on its own
        (:func:`cnnspec.spec.library.check_library`)."""
        try:
            checked = check_library(path, reader=reader)
        except SpecError as exc:
            return Analysis(path, version, list(exc.diagnostics), library=True)
        return Analysis(path, version, checked.warnings, checked.doc, library=True)


def follow_lines(found: list[Diagnostic], file: str, before: str, now: str) -> list[Diagnostic]:
    """The diagnostics ``found`` in the text ``before`` of ``file``, moved to where their lines
    are in ``now``: kept where the line is unchanged (or edited, with no line added or removed:
    repeated until the next save compiles them again), moved where it is found once elsewhere
    (lines added above), dropped where it is gone or ambiguous (a squiggle on unrelated text is
    worse than none). Other files' stay."""
    old, new = before.splitlines(), now.splitlines()
    kept: list[Diagnostic] = []
    for diag in found:
        loc = diag.loc
        if loc is None or loc.file != file:
            kept.append(diag)
            continue
        line = old[loc.line - 1] if 0 < loc.line <= len(old) else None
        if line is None:
            continue
        if loc.line <= len(new) and new[loc.line - 1] == line:
            kept.append(diag)
            continue
        places = [index for index, text in enumerate(new) if text == line]
        if len(places) == 1:
            kept.append(replace(diag, loc=replace(loc, line=places[0] + 1)))
        elif len(old) == len(new):  # its line edited, none added or removed: kept there till saved
            kept.append(diag)
    return kept


@dataclass
class SearchRun:
    """What a check does with the search candidates, and what it did."""

    #: The findings of an earlier compilation of the candidates, repeated instead of
    #: compiling them (``None``: compile them, as ``validate`` does).
    repeat: list[Diagnostic] | None = None
    #: Whether the check reached the search pass (every earlier pass passed).
    reached: bool = False
    #: Whether the document has a search section (known once reached).
    section: bool = False
    #: Whether the candidates were compiled (the section's paths and objective passed).
    compiled: bool = False
    #: The candidates' findings: compiled, or repeated.
    found: list[Diagnostic] = field(default_factory=list)
    #: Leave candidates that would take long to compile (:data:`BACKGROUND_COST`) owed.
    background: bool = False
    #: The findings to repeat where they are left owed (their last compilation's).
    previous: list[Diagnostic] = field(default_factory=list)
    #: Whether they were left owed so (``background``).
    deferred: bool = False


def check(path: Path, reader: Reader, version: int | None = None, run: SearchRun | None = None) -> Analysis:
    """Run the front end on the spec ``path`` as ``cnnspec validate`` does, reading through
    ``reader``. ``run``: whether to compile the search candidates or repeat earlier findings,
    and what came of it (default: compile them, as ``validate`` does)."""
    run = run if run is not None else SearchRun()
    # With validate's smallest-input note: on a shape error in an included file only, up to 24
    # resolutions more, bounded by MAX_STEPS (measured: 7 ms → 46 ms a check for a spec that
    # extends zoo:densenet121 at 28×28, 77 ms for zoo:inception_v3), and checks are debounced.
    # (the weights' files on the disk too, as validate checks them: checked again at each edit)
    context = Context(path=path, weights_on_disk=checks_weights_on_disk(path))
    source = Source(path=path, reader=reader)
    try:
        doc: SourceDoc = run_passes(source, context, COMPOSE)
    except SpecError as exc:
        return Analysis(path, version, list(exc.diagnostics))
    passes = tuple(_search_pass(run) if step is check_search else step for step in after(compose))
    try:
        compiled: CompiledSpec = run_passes(doc, context, passes)
    except SpecError as exc:
        return Analysis(path, version, list(exc.diagnostics), doc, searched=run.found)
    return Analysis(path, version, list(compiled.warnings), doc, compiled, searched=run.found)


def check_family(
    path: Path, reader: Reader, version: int | None = None, run: SearchRun | None = None
) -> Analysis:
    """:func:`check`, and for a family file each of its other variants too, as ``cnnspec
    validate`` checks each (one that compiles says nothing of the others' vars): their
    diagnostics joined to the document's, the same one in several variants once, one that only
    some have with a note naming them. The document's own check is its first variant's (the
    one it compiles to) and gives the analysis its located document; the others' search
    candidates are not compiled (their sections' paths and objective are checked)."""
    variants = family_variants(path, reader=reader)
    own = check(path, reader, version, run)
    if len(variants) < 2:
        return own
    found = [own.diagnostics]
    found += [check(variant, reader, None, SearchRun([])).diagnostics for variant in variants[1:]]
    # the variants named as the document's diagnostics name it (validate: as its command line)
    name = display_name(path)
    named = [Path(f"{name}#{str(variant).rpartition('#')[2]}") for variant in variants]
    said: dict[tuple[object, ...], None] = {}
    merged = [d for noted in variant_notes(named, [0] * len(named), found) for d in unsaid(noted, said, 0)]
    return replace(own, diagnostics=merged)


def _search_pass(run: SearchRun) -> Pass:
    """:func:`cnnspec.analysis.passes.check_search`, with the candidates' findings put in
    ``run.found``: compiled when ``run.repeat`` is ``None``, else ``run.repeat`` repeated. Only
    while the section still reads: its errors replace what an older text's candidates gave."""

    def search(compiled: CompiledSpec, context: Context) -> CompiledSpec:
        run.reached = True
        if "search" not in compiled.doc.data:
            return compiled
        run.section = True
        before = len(context.diags.warnings)
        space = check_space(compiled, context.diags)
        if space is not None:
            start = len(context.diags.items)
            repeat = run.repeat
            if repeat is None and run.background and _costly(compiled, space):
                run.deferred = True
                repeat = run.previous
            if repeat is None:
                check_candidates(compiled, space, context.diags, _trial_compiler(compiled, context))
                run.compiled = True
            else:
                for diagnostic in repeat:
                    context.diags.add(diagnostic)
            run.found.extend(context.diags.items[start:])
        compiled.search = space
        context.diags.raise_if_errors()
        # as `validate`'s pass does: the section's warnings (a space only sampled) are the spec's
        compiled.warnings.extend(context.diags.warnings[before:])
        return compiled

    return search


def _costly(compiled: CompiledSpec, space: SearchSpace) -> bool:
    """Whether compiling the candidates of ``space`` would take long (:data:`BACKGROUND_COST`)."""
    return len(compiled.ir.nodes) * planned_compiles(space) > BACKGROUND_COST


def _trial_compiler(compiled: CompiledSpec, context: Context) -> Callable[[SourceDoc], CompiledSpec]:
    """Compile one trial's spec (it has no search section) with the options of this check."""

    def compile_trial(doc: SourceDoc) -> CompiledSpec:
        return compile_doc(
            doc,
            max_params=context.max_params,
            path=compiled.path,
            allow_outside=context.allow_outside,
            explain_input=context.explain_input,
        )

    return compile_trial


def is_library(text: str | None) -> bool:
    """A file with top-level ``blocks:`` and neither ``model:`` nor ``extends:`` (a spec may
    take its model from its base); cheap: the key lines only."""
    if text is None:
        return False
    return is_library_keys(_top_keys(text))


def source_text(file: str) -> str | None:
    """The text the loader last read for ``file`` (a diagnostic's file name)."""
    return SOURCE_TEXTS.get(file)


def path_of(file: str) -> Path:
    """The file a diagnostic's name means (names are relative to the working directory)."""
    return (Path.cwd() / file).resolve()
