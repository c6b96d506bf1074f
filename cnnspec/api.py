"""The public API: each pipeline stage as a plain function.

``load`` (text → located document, with extends/use/--set) → ``validate`` (JSON Schema) →
``resolve`` (IR with shapes and counts) → back ends: ``build_model`` (Keras) and the code
emitter. ``compile_spec`` runs the front end in one call. Nothing here imports TensorFlow
until ``build_model`` is called.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnspec.analysis.lint import lint
from cnnspec.analysis.report import DEFAULT_MAX_PARAMS, check_size, summary
from cnnspec.errors import Diagnostic, Diagnostics
from cnnspec.ir import ModelIR
from cnnspec.spec.compose import apply_overrides, load_spec
from cnnspec.spec.loader import SourceDoc, load_text
from cnnspec.spec.resolve import Resolver
from cnnspec.spec.schema import validate_document

if TYPE_CHECKING:
    import keras


@dataclass
class CompiledSpec:
    """A spec that passed the front end: its document, IR and warnings."""

    doc: SourceDoc
    ir: ModelIR
    warnings: list[Diagnostic] = field(default_factory=list)
    path: Path | None = None

    @property
    def name(self) -> str:
        return self.ir.name

    @property
    def data(self) -> dict[str, Any]:
        return dict(self.doc.data.get("data") or {})

    @property
    def training(self) -> dict[str, Any]:
        return dict(self.doc.data.get("training") or {})

    @property
    def runtime(self) -> dict[str, Any]:
        return dict(self.doc.data.get("runtime") or {})

    @property
    def resolved(self) -> dict[str, Any]:
        """The fully composed spec (extends, use and --set applied) as plain data."""
        return self.doc.data

    def spec_hash(self) -> str:
        """SHA-256 of the composed spec; equal specs give equal hashes."""
        text = json.dumps(self.doc.data, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def summary(self) -> dict[str, Any]:
        return summary(self.ir)


def load(
    path: str | Path, overrides: list[str] | tuple[str, ...] = (), *, allow_outside: bool = False
) -> SourceDoc:
    """Stage 1: read a spec file (and its ``extends``/``use`` files), apply overrides."""
    return load_spec(path, overrides, allow_outside=allow_outside)


def validate(doc: SourceDoc, diags: Diagnostics | None = None) -> Diagnostics:
    """Stage 2: JSON Schema validation; raises SpecError with every error found."""
    own = diags if diags is not None else Diagnostics()
    validate_document(doc, own)
    own.raise_if_errors()
    return own


def resolve(
    doc: SourceDoc, diags: Diagnostics | None = None, *, max_params: int = DEFAULT_MAX_PARAMS
) -> ModelIR:
    """Stage 3: expand blocks/repeat/combinators, infer shapes and counts, check limits."""
    own = diags if diags is not None else Diagnostics()
    ir = Resolver(doc, own).resolve()
    own.raise_if_errors()
    check_size(ir, max_params, own, doc.loc(("model",)))
    own.raise_if_errors()
    return ir


#: Sections the resolver does not read: schema errors there do not stop resolution, so the
#: user sees layer errors and training-section errors in one run.
_INDEPENDENT_SECTIONS = ("data", "training", "runtime", "description", "cnnspec")


def compile_doc(
    doc: SourceDoc, *, max_params: int = DEFAULT_MAX_PARAMS, path: Path | None = None
) -> CompiledSpec:
    """Validate and resolve a loaded document, reporting the errors of both stages together."""
    diags = Diagnostics()
    validate_document(doc, diags)
    if any(not d.path.startswith(_INDEPENDENT_SECTIONS) for d in diags.errors):
        diags.raise_if_errors()
    ir = resolve(doc, diags, max_params=max_params)
    compiled = CompiledSpec(doc, ir, diags.warnings, path)
    compiled.warnings.extend(lint(compiled))  # e.g. an augmentation value_range the data does not have
    return compiled


def compile_spec(
    path: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    allow_outside: bool = False,
    max_params: int = DEFAULT_MAX_PARAMS,
) -> CompiledSpec:
    """Run the whole front end on a spec file; raises SpecError with located diagnostics."""
    doc = load(path, overrides, allow_outside=allow_outside)
    return compile_doc(doc, max_params=max_params, path=Path(path))


def compile_text(
    text: str,
    file: str = "<string>",
    overrides: list[str] | tuple[str, ...] = (),
    *,
    max_params: int = DEFAULT_MAX_PARAMS,
) -> CompiledSpec:
    """Like :func:`compile_spec` for spec text (no ``extends``/``use``)."""
    doc = load_text(text, file)
    apply_overrides(doc, overrides)
    return compile_doc(doc, max_params=max_params)


def _compiled(spec: CompiledSpec | str | Path) -> CompiledSpec:
    return spec if isinstance(spec, CompiledSpec) else compile_spec(spec)


def build_model(spec: CompiledSpec | str | Path) -> keras.Model:
    """Back end: the Keras functional model of a spec (imports TensorFlow)."""
    from cnnspec.backends.keras_builder import build_model as build

    return build(_compiled(spec).ir)


def build_augmentation(spec: CompiledSpec | str | Path) -> keras.Sequential | None:
    """The spec's ``augmentation`` section as a Keras Sequential (``None`` when empty)."""
    from cnnspec.backends.keras_builder import build_augmentation as build

    return build(_compiled(spec).ir)


def generate_code(spec: CompiledSpec | str | Path, *, script: bool = False) -> str:
    """Back end: standalone Python source of a spec — the model module, or with ``script=True``
    a complete training program (no TensorFlow needed to generate it)."""
    from cnnspec.backends.python_emitter import generate_code as emit

    return emit(_compiled(spec), script=script).text
